// How many parameters a job's model has, and how many of them train, found from config.json and
// the safetensors headers alone: no weight is read, so CheckSpec can report the figures when a
// job is created, long before it runs. Internal to the engine; plain C++ (no LibTorch).
//
// The count walks the tensors that LoadModel loads (roberta.cc, llama.cc), in the same way:
//   frozen   every base tensor the architecture reads (embeddings, norms, projections; a tied
//            lm_head counts once), less the target projections' own weights with Method::kFull
//   trainable  LoRA: A [r, in] + B [out, r] per target projection (DoRA: + its magnitude
//            [out]); kFull: the target's weight
//            and bias; plus the task head (classification, regression) in both methods
//   total    frozen + trainable, as PEFT counts "all params"
// trainer_test checks the figures against the loaded model's for several specs and models.
#ifndef ATTUNE_SERVER_ENGINE_PARAMETER_COUNT_H_
#define ATTUNE_SERVER_ENGINE_PARAMETER_COUNT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/job_spec.h"
#include "server/engine/hf_config.h"

namespace attune::engine {

struct ParameterCounts {
  int64_t total = 0;      // every parameter of the model as the job builds it
  int64_t trainable = 0;  // adapters (or full target weights) and the head
};

// The counts for `spec` on its model (spec.model_dir), with `num_labels` classes for
// classification (ignored for regression, which has one output, and causal LM).
// INVALID_ARGUMENT naming the file or field when config.json or the weights cannot be read, a
// tensor the architecture needs is missing, has another shape than config.json implies or is not
// floating point, lora_rank is below 1 with LoRA, or num_labels is below 1. Targets the
// architecture lacks are not counted (CheckSpec rejects them first). The files are opened inside
// `data_roots` (common/confined_file.h; empty = no root restriction). Thread-safe.
absl::StatusOr<ParameterCounts> CountParameters(const TrainSpec& spec, int num_labels,
                                                const std::vector<std::string>& data_roots = {});

// An upper-bound estimate of the memory that training `spec` takes on its device, in bytes,
// from the model's shapes (`config`) and `counts`, assuming every batch is full (batch_size rows)
// and padded to max_seq_len, everything in fp32:
//   weights      4 x total parameters
//   training     16 x trainable parameters (gradient, AdamW's two moments, the flat gradient)
//   activations  layers x batch x seq x (34 x hidden + 5 x heads x seq) x 2, the activations a
//                transformer layer keeps for the backward pass (Korthikanti et al. 2022, "Reducing
//                Activation Recomputation in Large Transformer Models", eq. 1, counted there in
//                2-byte values; doubled for fp32)
//   logits       causal LM: 8 x batch x seq x vocab (the logits and their gradient; the chunked
//                loss holds less)
// Saturates at INT64_MAX instead of overflowing. Thread-safe.
int64_t EstimateTrainingMemory(const TrainSpec& spec, const HfConfig& config,
                               const ParameterCounts& counts);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_PARAMETER_COUNT_H_
