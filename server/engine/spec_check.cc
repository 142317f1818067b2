// CheckSpec (trainer.h): a job's files read and checked when it is created, without training.
#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "server/engine/exception_status.h"
#include "server/engine/hf_config.h"
#include "server/engine/job_setup.h"
#include "server/engine/model.h"
#include "server/engine/parameter_count.h"
#include "server/engine/trainer.h"

namespace attune::engine {
namespace {

// The targets exist in the architecture, and causal LM has a decoder.
absl::Status CheckArchitecture(const TrainSpec& spec, const ModelDescription& description) {
  const auto& supported = description.supported_targets;
  for (const std::string& target : spec.targets) {
    if (std::find(supported.begin(), supported.end(), target) == supported.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("targets: projection '", target, "' does not exist in ",
                       description.architecture, "; it has ", absl::StrJoin(supported, ",")));
    }
  }
  if (spec.task == Task::kCausalLm && !IsDecoderModelType(description.model_type)) {
    return absl::InvalidArgumentError(
        absl::StrCat("task: causal-lm needs a decoder model (llama, qwen2, mistral); ",
                     spec.model_dir, " is ", description.model_type));
  }
  return absl::OkStatus();
}

// Every id the tokenizer can produce has a row in the embedding (else training fails with
// "index out of range in self").
absl::Status CheckVocabulary(const TrainSpec& spec, const Tokenizer& tokenizer,
                             const HfConfig& config) {
  if (tokenizer.VocabSize() <= config.vocab_size) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("model: tokenizer.json has ids up to ", tokenizer.VocabSize() - 1,
                   " (added tokens included) but config.json's vocab_size is ", config.vocab_size,
                   "; every token id must be below vocab_size (", spec.model_dir, ")"));
}

absl::StatusOr<SpecCheck> CheckFiles(const TrainSpec& spec, const CheckOptions& options) {
  const std::vector<std::string>& roots = options.data_roots;
  ASSIGN_OR_RETURN(ModelDescription description, DescribeModel(spec.model_dir, roots));
  RETURN_IF_ERROR(CheckArchitecture(spec, description));
  ASSIGN_OR_RETURN(HfConfig config, LoadHfConfig(spec.model_dir, roots));
  ASSIGN_OR_RETURN(JobData data, SetupData(spec, roots));
  RETURN_IF_ERROR(CheckVocabulary(spec, *data.tokenizer, config));
  ASSIGN_OR_RETURN(ParameterCounts counts, CountParameters(spec, data.labels.num_labels, roots));
  SpecCheck check;
  check.architecture = description.architecture;
  check.total_parameters = counts.total;
  check.trainable_parameters = counts.trainable;
  check.base_model_bytes = WeightBytes(spec.model_dir, roots);
  check.num_labels = data.labels.num_labels;
  check.train_examples = static_cast<int64_t>(data.train.size());
  check.validation_examples = static_cast<int64_t>(data.validation.size());
  check.estimated_memory_bytes = EstimateTrainingMemory(spec, config, counts);
  return check;
}

}  // namespace

absl::StatusOr<SpecCheck> CheckSpec(const TrainSpec& spec, const CheckOptions& options) {
  return CatchExceptions("check", [&] { return CheckFiles(spec, options); });
}

}  // namespace attune::engine
