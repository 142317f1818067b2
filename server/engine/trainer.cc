// The training recipe: Setup (data, model, optimizer) -> Train (steps, evaluations,
// checkpoints) -> SaveCheckpoint -> Cleanup. See trainer.h for the contract.
#include "server/engine/trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "common/metrics.h"
#include "common/status_macros.h"
#include "server/engine/batches.h"
#include "server/engine/checkpoint.h"
#include "server/engine/data.h"
#include "server/engine/evaluate.h"
#include "server/engine/hf_config.h"
#include "server/engine/job_setup.h"
#include "server/engine/model.h"
#include "server/engine/optimizer.h"
#include "server/engine/step_graphs.h"

namespace attune::engine {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kMaxNonFiniteInARow = 5;

// ---------------------------------------------------------------------------------------------
// Checkpoints

json AdapterConfig(const TrainSpec& spec, const Model& model) {
  if (spec.method == Method::kFull) return json();
  std::vector<std::string> modules_to_save = model.ModulesToSave();
  return json{
      {"peft_type", "LORA"},
      {"task_type", model.PeftTaskType()},
      {"base_model_name_or_path", spec.model_dir},
      {"r", spec.lora_rank},
      {"lora_alpha", spec.lora_alpha},
      {"lora_dropout", spec.lora_dropout},
      {"target_modules", model.TargetModuleNames()},
      {"bias", "none"},
      {"use_rslora", spec.use_rslora},
      {"modules_to_save", modules_to_save.empty() ? json() : json(modules_to_save)},
      {"fan_in_fan_out", false},
      {"inference_mode", true},
      {"init_lora_weights", true},
      {"layers_to_transform", nullptr},
      {"layers_pattern", nullptr},
      {"rank_pattern", json::object()},
      {"alpha_pattern", json::object()},
      {"revision", nullptr},
      {"use_dora", false},
  };
}

json Record(const TrainSpec& spec, const JobData& data, int64_t step,
            const std::optional<EvalMetrics>& eval, double train_loss) {
  json metrics = {{"train_loss", train_loss}};
  if (eval.has_value()) {
    metrics["eval_loss"] = eval->loss;
    if (eval->accuracy) metrics["eval_accuracy"] = *eval->accuracy;
    if (eval->pearson) metrics["eval_pearson"] = *eval->pearson;
    if (eval->spearman) metrics["eval_spearman"] = *eval->spearman;
    if (eval->perplexity) metrics["eval_perplexity"] = *eval->perplexity;
  }
  JobSpec job;
  job.train = spec;
  return json{
      {"format", "attune.checkpoint.v1"},
      {"step", step},
      {"task", TaskName(spec.task)},
      {"method", MethodName(spec.method)},
      {"targets", spec.targets},
      {"learning_rate", spec.learning_rate},
      {"lr_ratios", spec.lr_ratios},
      {"loraplus_ratio", spec.loraplus_ratio},
      {"num_labels", data.labels.num_labels},
      {"label_names", data.labels.names},
      {"data", {{"train", {{"path", spec.train_path}, {"sha256", data.train_sha256}}},
                {"validation", {{"path", spec.validation_path}, {"sha256", data.validation_sha256}}}}},
      {"metrics", metrics},
      {"spec", json::parse(JobSpecToJson(job))},
  };
}

// ---------------------------------------------------------------------------------------------
// The run

class Run {
 public:
  Run(const TrainSpec& spec, const RunOptions& options, TrainingObserver* observer)
      : spec_(spec), options_(options), observer_(observer), device_(ParseDevice(options.device)) {}

  absl::StatusOr<TrainResult> Execute() {
    torch::manual_seed(spec_.seed);
    ASSIGN_OR_RETURN(data_, SetupData(spec_));
    ASSIGN_OR_RETURN(model_, SetupModel(spec_, data_, device_,
                                           options_.speed.fused_kernels ? Kernels::kFused
                                                                        : Kernels::kReference));
    params_ = model_->TrainableParameters();
    optimizer_ = std::make_unique<AdamW>(BuildParamGroups(params_, spec_));
    steps_per_epoch_ = (static_cast<int64_t>(data_.train.size()) + spec_.batch_size - 1) /
                       spec_.batch_size;
    total_steps_ = spec_.max_steps > 0 ? spec_.max_steps : spec_.epochs * steps_per_epoch_;

    int64_t start_step = 0;
    if (options_.resume == ResumeMode::kFromLatest) {
      ASSIGN_OR_RETURN(start_step, Resume());
    }
    observer_->OnStart(SetupSummary(), start_step);
    SetupStepGraphs(start_step);
    for (const std::string& warning : model_->warnings()) observer_->OnWarning(warning);
    model_->SetTraining(true);

    TrainResult result;
    last_report_ = std::chrono::steady_clock::now();
    for (int64_t step = start_step; step < total_steps_; ++step) {
      if (observer_->StopRequested()) {
        RETURN_IF_ERROR(ReportSteps());
        if (step > last_checkpoint_step_) RETURN_IF_ERROR(SaveCheckpoint(step));
        result.outcome = Outcome::kStopped;
        result.steps = step;
        return Finish(result);
      }
      RETURN_IF_ERROR(TrainStep(step));
      const int64_t done = step + 1;
      const bool last = done == total_steps_;
      const bool eval_due = spec_.eval_every > 0 ? done % spec_.eval_every == 0
                                                 : done % steps_per_epoch_ == 0;
      if (!data_.validation.empty() && (eval_due || last)) {
        RETURN_IF_ERROR(ReportSteps());
        std::vector<double> predictions;
        last_eval_ = Evaluate(*model_, data_.validation, spec_, data_.pad_id, device_, done,
                              last ? &predictions : nullptr);
        observer_->OnEval(*last_eval_);
        if (last) RETURN_IF_ERROR(WritePredictions(predictions));
      }
      const bool checkpoint_due = spec_.checkpoint_every > 0 && done % spec_.checkpoint_every == 0;
      if (checkpoint_due || last) {
        RETURN_IF_ERROR(ReportSteps());
        RETURN_IF_ERROR(SaveCheckpoint(done));
      }
    }
    result.outcome = Outcome::kCompleted;
    result.steps = total_steps_;
    return Finish(result);
  }

 private:
  SpecCheck SetupSummary() const {
    SpecCheck s;
    s.total_parameters = model_->TotalParameters();
    for (const TrainableParam& p : params_) s.trainable_parameters += p.tensor.numel();
    s.base_model_bytes = WeightBytes(spec_.model_dir);
    s.num_labels = data_.labels.num_labels;
    s.train_examples = static_cast<int64_t>(data_.train.size());
    s.validation_examples = static_cast<int64_t>(data_.validation.size());
    return s;
  }

  // Restores the newest checkpoint, if any; returns the step to continue from.
  absl::StatusOr<int64_t> Resume() {
    ASSIGN_OR_RETURN(std::optional<LoadedCheckpoint> checkpoint,
                     LoadLatestCheckpoint(options_.output_dir));
    if (!checkpoint.has_value()) return 0;
    torch::NoGradGuard no_grad;
    for (TrainableParam& p : params_) {
      auto it = checkpoint->adapter.find(p.name);
      if (it == checkpoint->adapter.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("resume: checkpoint ", checkpoint->dir, " lacks ", p.name));
      }
      p.tensor.copy_(it->second);
    }
    RETURN_IF_ERROR(optimizer_->LoadState(checkpoint->optimizer_state, checkpoint->optimizer_steps));
    if (checkpoint->rng_state.defined()) {
      at::Generator generator = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_state(checkpoint->rng_state);
    }
    const json& best = checkpoint->progress["best_score"];
    best_score_ = best.is_number() ? best.get<double>() : -INFINITY;
    best_step_ = checkpoint->progress.value("best_step", int64_t{-1});
    last_train_loss_ = checkpoint->progress.value("train_loss", 0.0);
    last_checkpoint_step_ = checkpoint->step;
    return checkpoint->step;
  }

  // Queues one step on the device: forward, backward, clipping and the update, which is skipped
  // on the device when the loss or gradient is not finite. Nothing is read back here; the step's
  // metrics wait in pending_ until ReportSteps.
  absl::Status TrainStep(int64_t step) {
    const int64_t epoch = step / steps_per_epoch_;
    if (epoch != batches_epoch_) {
      batches_ = EpochBatches(data_.train, spec_.batch_size, spec_.seed, epoch);
      batches_epoch_ = epoch;
    }
    Batch batch = MakeBatch(data_.train, batches_[step % steps_per_epoch_], spec_.task,
                            data_.pad_id, device_, MaskModeOf(),
                            options_.speed.pinned_batches ? HostMemory::kPinnedOnCuda
                                                          : HostMemory::kPageable);
    const double multiplier =
        ScheduleMultiplier(spec_.schedule, step, spec_.warmup_steps, total_steps_);
    optimizer_->SetLrMultiplier(multiplier);
    std::optional<StepOutputs> graphed;
    if (step_graphs_ != nullptr) {
      ASSIGN_OR_RETURN(graphed, step_graphs_->Run(batch));
    }
    const StepOutputs out = graphed.has_value() ? *graphed : StepBody(batch);
    PendingStep pending;
    pending.step = step;
    pending.loss = out.loss;
    pending.grad_norm = out.grad_norm;
    pending.finite = out.finite;
    pending.learning_rates = optimizer_->LearningRates(multiplier);
    pending.tokens = batch.tokens;
    pending.samples = batch.size;
    pending_.push_back(std::move(pending));
    const bool due =
        options_.speed.metrics_every > 0
            ? static_cast<int>(pending_.size()) >= options_.speed.metrics_every
            : !device_.is_cuda() || std::chrono::steady_clock::now() - last_report_ >=
                                        std::chrono::milliseconds(500);
    if (due) RETURN_IF_ERROR(ReportSteps());
    return absl::OkStatus();
  }

  // Forward, backward, clipping and the update (with the multiplier already set), all queued on
  // the device; an update whose loss or gradient is not finite is skipped there.
  StepOutputs StepBody(const Batch& batch) {
    torch::Tensor loss;
    {
      AutocastGuard autocast(device_);
      loss = StepLoss(batch);
    }
    loss.backward();
    StepOutputs out;
    out.loss = loss.detach();
    out.grad_norm = optimizer_->GradNorm();
    out.finite = torch::isfinite(out.loss).logical_and(torch::isfinite(out.grad_norm));
    optimizer_->ClipGradients(out.grad_norm, spec_.max_grad_norm);
    optimizer_->Update(out.finite);
    optimizer_->ZeroGrad();
    return out;
  }

  // SpeedOptions::cuda_graphs on CUDA: how many of the steps from `start_step` on have each
  // batch shape, for StepGraphs.
  void SetupStepGraphs(int64_t start_step) {
    if (!options_.speed.cuda_graphs || !device_.is_cuda()) return;
    std::map<BatchShape, int64_t> steps_per_shape;
    std::vector<std::vector<int64_t>> batches;
    int64_t epoch = -1;
    for (int64_t step = start_step; step < total_steps_; ++step) {
      if (step / steps_per_epoch_ != epoch) {
        epoch = step / steps_per_epoch_;
        batches = EpochBatches(data_.train, spec_.batch_size, spec_.seed, epoch);
      }
      ++steps_per_shape[ShapeOf(data_.train, batches[step % steps_per_epoch_], MaskModeOf())];
    }
    step_graphs_ = std::make_unique<StepGraphs>(
        device_, [this](const Batch& batch) { return StepBody(batch); },
        std::move(steps_per_shape), [this](const std::string& message) {
          optimizer_->ZeroGrad();
          observer_->OnWarning(
              absl::StrCat("CUDA graphs turned off for this job, steps run eagerly: ", message));
        });
  }

  MaskMode MaskModeOf() const {
    return options_.speed.unmasked_attention ? MaskMode::kOmitWhenNoPadding : MaskMode::kAlways;
  }

  // The training loss of `batch` (a 0-dim tensor on the device).
  torch::Tensor StepLoss(const Batch& batch) {
    if (spec_.task == Task::kCausalLm && options_.speed.chunked_lm_loss) {
      return model_->CausalLmLoss(batch.input_ids, batch.attention_mask, batch.labels);
    }
    return Loss(model_->Forward(batch.input_ids, batch.attention_mask), batch, spec_.task);
  }

  // Reads the pending steps' losses, norms and finiteness back in one copy (the only host sync
  // of training) and reports them in order. Fails after kMaxNonFiniteInARow skipped steps.
  absl::Status ReportSteps() {
    if (pending_.empty()) return absl::OkStatus();
    std::vector<torch::Tensor> values;
    for (const PendingStep& p : pending_) {
      values.push_back(p.loss.to(torch::kFloat64));
      values.push_back(p.grad_norm.to(torch::kFloat64));
      values.push_back(p.finite.to(torch::kFloat64));
    }
    const torch::Tensor host = torch::stack(values).to(torch::kCPU);
    const auto read = host.accessor<double, 1>();
    const auto now = std::chrono::steady_clock::now();
    const double seconds = std::max(
        std::chrono::duration<double>(now - last_report_).count() / pending_.size(), 1e-9);
    last_report_ = now;
    std::vector<PendingStep> pending = std::move(pending_);
    pending_.clear();
    for (size_t i = 0; i < pending.size(); ++i) {
      const PendingStep& p = pending[i];
      StepMetrics metrics;
      metrics.step = p.step + 1;
      metrics.total_steps = total_steps_;
      metrics.epoch = static_cast<double>(p.step + 1) / static_cast<double>(steps_per_epoch_);
      metrics.train_loss = read[3 * i];
      metrics.learning_rates = p.learning_rates;
      metrics.tokens_per_second = static_cast<double>(p.tokens) / seconds;
      metrics.samples_per_second = static_cast<double>(p.samples) / seconds;
      metrics.tokens = p.tokens;
      metrics.samples = p.samples;
      if (read[3 * i + 2] == 0) {
        metrics.skipped = true;
        if (++non_finite_in_a_row_ >= kMaxNonFiniteInARow) {
          return absl::InternalError(absl::StrCat(
              "training: the loss or gradient was not finite for ", kMaxNonFiniteInARow,
              " steps in a row (last at step ", p.step + 1,
              "); try a lower learning_rate or lr_ratios, or check the data"));
        }
        observer_->OnWarning(absl::StrCat("step ", p.step + 1,
                                          ": loss or gradient is not finite; step skipped"));
      } else {
        non_finite_in_a_row_ = 0;
        metrics.grad_norm = read[3 * i + 1];
        last_train_loss_ = metrics.train_loss;
      }
      observer_->OnStep(metrics);
    }
    return absl::OkStatus();
  }

  absl::Status SaveCheckpoint(int64_t step) {
    CheckpointContent content;
    content.step = step;
    for (const TrainableParam& p : params_) {
      content.adapter.emplace_back(p.name, p.tensor.detach().to(torch::kCPU).contiguous());
    }
    content.adapter_config = AdapterConfig(spec_, *model_);
    content.record = Record(spec_, data_, step, last_eval_, last_train_loss_);
    content.optimizer_state = optimizer_->StateTensors();
    content.optimizer_steps = optimizer_->step_count();
    {
      at::Generator generator = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(generator.mutex());
      content.rng_state = generator.get_state();
    }
    std::optional<double> metric;
    bool best = false;
    if (last_eval_.has_value() && last_eval_->step == step) {
      metric = RankingMetric(*last_eval_);
      if (best_step_ < 0 || Outranks({step, *metric}, {best_step_, best_score_})) {
        best_score_ = *metric;
        best_step_ = step;
        best = true;
      }
    }
    content.progress = {{"best_score", std::isfinite(best_score_) ? json(best_score_) : json()},
                        {"best_step", best_step_},
                        {"train_loss", last_train_loss_}};
    ASSIGN_OR_RETURN(CheckpointInfo info, WriteCheckpoint(options_.output_dir, content));
    info.eval_metric = metric;
    info.best = best;
    info.deleted_steps = PruneCheckpoints(options_.output_dir, spec_.keep_checkpoints, best_step_);
    last_checkpoint_step_ = step;
    last_checkpoint_ = info;
    observer_->OnCheckpoint(info);
    return absl::OkStatus();
  }

  // The final evaluation's predictions, one JSON object per validation example, in file order:
  // <output_dir>/eval_predictions.jsonl. Lets people (and the PEFT cross-check) compare outputs.
  absl::Status WritePredictions(const std::vector<double>& predictions) const {
    if (predictions.empty()) return absl::OkStatus();
    const std::string path = (fs::path(options_.output_dir) / "eval_predictions.jsonl").string();
    std::error_code ec;
    fs::create_directories(options_.output_dir, ec);
    std::ofstream out(path, std::ios::trunc);
    for (size_t i = 0; i < predictions.size(); ++i) {
      json line = {{"index", i}};
      if (spec_.task == Task::kRegression) {
        line["prediction"] = predictions[i];
      } else {
        const auto id = static_cast<int64_t>(predictions[i]);
        line["prediction"] = id;
        if (id >= 0 && id < static_cast<int64_t>(data_.labels.names.size())) {
          line["label"] = data_.labels.names[id];
        }
      }
      out << line.dump() << "\n";
    }
    if (!out) return absl::InternalError(absl::StrCat("training: cannot write ", path));
    return absl::OkStatus();
  }

  TrainResult Finish(TrainResult result) {
    result.final_eval = last_eval_;
    result.final_checkpoint = last_checkpoint_;
    result.total_parameters = model_->TotalParameters();
    result.graph_replays = step_graphs_ != nullptr ? step_graphs_->replays() : 0;
    for (const TrainableParam& p : params_) result.trainable_parameters += p.tensor.numel();
    return result;
  }

  // Constant after construction.
  const TrainSpec spec_;
  const RunOptions options_;
  TrainingObserver* const observer_;
  const torch::Device device_;
  // Set up by Execute.
  JobData data_;
  std::unique_ptr<Model> model_;
  std::vector<TrainableParam> params_;
  std::unique_ptr<AdamW> optimizer_;
  int64_t steps_per_epoch_ = 1;
  int64_t total_steps_ = 0;
  // Progress.
  struct PendingStep {  // a step queued on the device, not yet reported
    int64_t step = 0;
    torch::Tensor loss, grad_norm, finite;  // 0-dim, on the device
    std::map<std::string, double> learning_rates;
    int64_t tokens = 0;
    int64_t samples = 0;
  };
  std::vector<PendingStep> pending_;
  std::unique_ptr<StepGraphs> step_graphs_;  // SpeedOptions::cuda_graphs on CUDA, else null
  std::chrono::steady_clock::time_point last_report_;
  std::vector<std::vector<int64_t>> batches_;
  int64_t batches_epoch_ = -1;
  int non_finite_in_a_row_ = 0;
  double last_train_loss_ = 0;
  std::optional<EvalMetrics> last_eval_;
  std::optional<CheckpointInfo> last_checkpoint_;
  int64_t last_checkpoint_step_ = 0;
  double best_score_ = -INFINITY;
  int64_t best_step_ = -1;
};

}  // namespace

absl::StatusOr<SpecCheck> CheckSpec(const TrainSpec& spec) {
  try {
    ASSIGN_OR_RETURN(ModelDescription description, DescribeModel(spec.model_dir));
    for (const std::string& target : spec.targets) {
      const auto& supported = description.supported_targets;
      if (std::find(supported.begin(), supported.end(), target) == supported.end()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "targets: projection '", target, "' does not exist in ", description.architecture,
            "; it has ", absl::StrJoin(supported, ",")));
      }
    }
    if (spec.task == Task::kCausalLm && !IsDecoderModelType(description.model_type)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "task: causal-lm needs a decoder model (llama, qwen2, mistral); ", spec.model_dir,
          " is ", description.model_type));
    }
    ASSIGN_OR_RETURN(JobData data, SetupData(spec));
    SpecCheck check;
    check.architecture = description.architecture;
    check.base_model_bytes = WeightBytes(spec.model_dir);
    check.num_labels = data.labels.num_labels;
    check.train_examples = static_cast<int64_t>(data.train.size());
    check.validation_examples = static_cast<int64_t>(data.validation.size());
    return check;
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("model: ", e.what()));
  }
}

absl::StatusOr<TrainResult> RunTraining(const TrainSpec& spec, const RunOptions& options,
                                        TrainingObserver* observer) {
  try {
    Run run(spec, options, observer);
    return run.Execute();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("training: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("training: ", e.what()));
  }
}

std::vector<std::string> CudaDevices() {
  std::vector<std::string> devices;
  if (!torch::cuda::is_available()) return devices;
  for (size_t i = 0; i < torch::cuda::device_count(); ++i) devices.push_back(absl::StrCat("cuda:", i));
  return devices;
}

}  // namespace attune::engine
