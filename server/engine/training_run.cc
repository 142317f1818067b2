#include "server/engine/training_run.h"

#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"
#include "server/engine/cuda_graph_step.h"
#include "server/engine/device_memory.h"
#include "server/engine/evaluate.h"

namespace attune::engine {
namespace {

// The CPU generator's state (dropout draws), for bit-identical resumes.
torch::Tensor CpuGeneratorState() {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

void SetCpuGeneratorState(const torch::Tensor& state) {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

}  // namespace

TrainingRun::TrainingRun(const TrainSpec& spec, const RunOptions& options,
                         TrainingObserver* observer,
                         std::shared_ptr<FrozenTensorCache> frozen_cache)
    : spec_(spec),
      options_(options),
      observer_(observer),
      device_(ParseDevice(options.device)),
      frozen_cache_(std::move(frozen_cache)),
      early_stopping_(spec.early_stopping_patience, spec.eval_metric) {}

TrainingRun::~TrainingRun() = default;

absl::StatusOr<TrainResult> TrainingRun::Execute() {
  RETURN_IF_ERROR(Begin());
  while (true) {
    ASSIGN_OR_RETURN(std::optional<Batch> batch, PrepareStep());
    if (!batch.has_value()) return Result();
    ASSIGN_OR_RETURN(StepOutputs out, RunStep(*batch));
    RETURN_IF_ERROR(CompleteStep(*batch, std::move(out)));
  }
}

absl::Status TrainingRun::Begin() {
  RETURN_IF_ERROR(Setup());
  // After Setup: the allocator exists once the model is on the device, and the peak still
  // counts the weights, which stay allocated.
  ResetPeakDeviceMemory(device_);
  if (options_.resume == ResumeMode::kFromLatest) {
    ASSIGN_OR_RETURN(step_, Resume());
  }
  if (parallel_ != nullptr) {  // every rank starts from rank 0's parameters
    torch::NoGradGuard no_grad;
    torch::Tensor params = optimizer_->FlatParameters();
    parallel_->Broadcast(params);
  }
  observer_->OnStart(SetupSummary(), step_);
  SetupStepGraphs(step_);
  for (const std::string& warning : model_->warnings()) observer_->OnWarning(warning);
  model_->SetTraining(true);
  reporter_->Start();
  return absl::OkStatus();
}

absl::Status TrainingRun::Setup() {
  if (!options_.parallel.rendezvous.empty()) {
    ASSIGN_OR_RETURN(parallel_, DataParallel::Connect(options_.parallel, device_));
  }
  torch::manual_seed(spec_.seed);
  ASSIGN_OR_RETURN(data_, SetupData(spec_, options_.data_roots));
  ASSIGN_OR_RETURN(model_,
                   SetupModel(spec_, data_, device_,
                              options_.speed.fused_kernels ? Kernels::kFused : Kernels::kReference,
                              options_.speed.packed_attention, options_.data_roots, frozen_cache_));
  params_ = model_->TrainableParameters();
  optimizer_ = std::make_unique<AdamW>(BuildParamGroups(params_, spec_));
  step_batches_ = std::make_unique<StepBatches>(data_.train, spec_, MaskModeOf(),
                                                parallel_ != nullptr ? parallel_->rank() : 0,
                                                parallel_ != nullptr ? parallel_->world_size() : 1);
  steps_per_epoch_ = step_batches_->steps_per_epoch();
  total_steps_ = spec_.max_steps > 0 ? spec_.max_steps : spec_.epochs * steps_per_epoch_;
  reporter_ = std::make_unique<StepReporter>(device_, options_.speed.metrics_every, total_steps_,
                                             steps_per_epoch_, observer_);
  keeper_ = std::make_unique<CheckpointKeeper>(options_.output_dir, spec_.keep_checkpoints,
                                               spec_.eval_metric, observer_);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> TrainingRun::Resume() {
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
  if (checkpoint->rng_state.defined()) SetCpuGeneratorState(checkpoint->rng_state);
  ASSIGN_OR_RETURN(CheckpointInfo info, DescribeCheckpoint(checkpoint->dir, checkpoint->step));
  keeper_->Restore(*checkpoint, std::move(info));
  reporter_->set_last_train_loss(checkpoint->progress.train_loss);
  return checkpoint->step;
}

void TrainingRun::SetupStepGraphs(int64_t start_step) {
  // With several ranks each step's loss share differs, which a captured graph would freeze.
  if (!options_.speed.cuda_graphs || !device_.is_cuda() || MultiRank()) return;
  std::map<BatchShape, int64_t> steps_per_shape;
  for (int64_t step = start_step; step < total_steps_; ++step) {
    ++steps_per_shape[step_batches_->ShapeAt(step)];
  }
  step_graphs_ = std::make_unique<StepGraphs>(
      device_, [this](const Batch& batch) { return StepBody(batch); }, std::move(steps_per_shape),
      [this](const std::string& message) {
        optimizer_->ZeroGrad();
        observer_->OnWarning(
            absl::StrCat("CUDA graphs turned off for this job, steps run eagerly: ", message));
      });
}

absl::StatusOr<std::optional<Batch>> TrainingRun::PrepareStep() {
  if (result_.has_value()) return std::nullopt;
  if (step_ >= total_steps_ || !early_stopping_.reason().empty()) {
    result_ = Finish(Outcome::kCompleted, step_);
    return std::nullopt;
  }
  if (StopRequested()) {
    result_ = Stop(step_);
    RETURN_IF_ERROR(result_->status());
    return std::nullopt;
  }
  Batch batch = step_batches_->Make(
      step_, data_.pad_id, device_,
      options_.speed.pinned_batches ? HostMemory::kPinnedOnCuda : HostMemory::kPageable);
  totals_ = step_batches_->TotalsAt(step_);
  loss_share_ = totals_.loss_share;
  if (MultiRank()) {
    // Each rank draws its own dropout, a function of (seed, rank, step), so a resumed rank
    // draws what it would have without a stored generator state.
    torch::manual_seed(spec_.seed ^ (uint64_t{0x9E3779B97F4A7C15} * (parallel_->rank() + 1)) ^
                       (static_cast<uint64_t>(step_) << 20));
  }
  multiplier_ = ScheduleMultiplier(spec_.schedule, step_, spec_.warmup_steps, total_steps_);
  optimizer_->SetLrMultiplier(multiplier_);
  return batch;
}

absl::StatusOr<StepOutputs> TrainingRun::RunStep(const Batch& batch) {
  if (step_graphs_ != nullptr) {
    ASSIGN_OR_RETURN(std::optional<StepOutputs> graphed, step_graphs_->Run(batch));
    if (graphed.has_value()) return *std::move(graphed);
  }
  absl::ReaderMutexLock shared(&CudaRngMutex());  // no other job captures meanwhile
  return StepBody(batch);
}

absl::Status TrainingRun::CompleteStep(const Batch& batch, StepOutputs out) {
  PendingStep pending;
  pending.step = step_;
  pending.loss = out.loss;
  pending.grad_norm = out.grad_norm;
  pending.finite = out.finite;
  pending.learning_rates = optimizer_->LearningRates(multiplier_);
  pending.tokens = MultiRank() ? totals_.tokens : batch.tokens;
  pending.samples = MultiRank() ? totals_.examples : batch.size;
  RETURN_IF_ERROR(reporter_->Add(std::move(pending)));
  ++step_;
  return AfterStep(step_);
}

StepOutputs TrainingRun::StepBody(const Batch& batch) {
  torch::Tensor loss;
  if (loss_share_ > 0) {
    {
      AutocastGuard autocast(device_);
      loss = StepLoss(batch);
    }
    if (loss_share_ != 1.0) loss = loss * loss_share_;
    loss.backward();
    loss = loss.detach();
  } else {  // a data-parallel rank whose share of the step has no loss terms
    loss = torch::zeros({}, torch::dtype(torch::kFloat32).device(device_));
  }
  return FinishBackward(loss);
}

StepOutputs TrainingRun::FinishBackward(torch::Tensor loss) {
  if (parallel_ != nullptr) ReduceAcrossRanks(loss);
  StepOutputs out;
  out.loss = loss;
  out.grad_norm = optimizer_->GradNorm();
  out.finite = torch::isfinite(out.loss).logical_and(torch::isfinite(out.grad_norm));
  optimizer_->ClipGradients(out.grad_norm, spec_.max_grad_norm);
  optimizer_->Update(out.finite);
  optimizer_->ZeroGrad();
  return out;
}

void TrainingRun::ReduceAcrossRanks(torch::Tensor& loss) {
  torch::NoGradGuard no_grad;
  torch::Tensor grads = optimizer_->FlatGradients();
  parallel_->AllReduceSum(grads);
  torch::Tensor sum = loss.reshape({1}).clone();
  parallel_->AllReduceSum(sum);
  loss = sum.reshape({});
}

bool TrainingRun::StopRequested() {
  const bool local = observer_->StopRequested();
  return MultiRank() ? parallel_->AnyRank(local, device_) : local;
}

torch::Tensor TrainingRun::StepLoss(const Batch& batch) {
  if (spec_.task == Task::kCausalLm && options_.speed.chunked_lm_loss) {
    return model_->CausalLmLoss(batch.input_ids, batch.attention_mask, batch.labels, batch.packing);
  }
  return Loss(model_->Forward(batch.input_ids, batch.attention_mask, batch.packing), batch,
              spec_.task);
}

absl::Status TrainingRun::AfterStep(int64_t done) {
  const bool last = done == total_steps_;
  const bool eval_due =
      spec_.eval_every > 0 ? done % spec_.eval_every == 0 : done % steps_per_epoch_ == 0;
  const bool evaluate = !data_.validation.empty() && (eval_due || last);
  if (evaluate) RETURN_IF_ERROR(EvaluateAt(done, last));
  // Early stopping keeps the best evaluation's checkpoint, so every evaluation gets one.
  const bool checkpoint_due = (spec_.checkpoint_every > 0 && done % spec_.checkpoint_every == 0) ||
                              (evaluate && early_stopping_.enabled());
  if (checkpoint_due || last) {
    RETURN_IF_ERROR(reporter_->Flush());
    RETURN_IF_ERROR(SaveCheckpoint(done));
  }
  return absl::OkStatus();
}

absl::Status TrainingRun::EvaluateAt(int64_t done, bool last) {
  RETURN_IF_ERROR(reporter_->Flush());
  std::vector<double> predictions;
  last_eval_ = Evaluate(*model_, data_.validation, spec_, data_.pad_id, device_, done,
                        last || early_stopping_.enabled() ? &predictions : nullptr);
  observer_->OnEval(*last_eval_);
  const bool stop_early = early_stopping_.Observe(*last_eval_);
  if ((!last && !stop_early) || !WritesFiles()) return absl::OkStatus();
  return WritePredictions(options_.output_dir, predictions, spec_.task, data_.labels.names);
}

absl::Status TrainingRun::SaveCheckpoint(int64_t step) {
  if (!WritesFiles()) return absl::OkStatus();
  CheckpointContent content;
  content.step = step;
  for (const TrainableParam& p : params_) {
    content.adapter.emplace_back(p.name, p.tensor.detach().to(torch::kCPU).contiguous());
  }
  content.adapter_config = AdapterConfig();
  CheckpointRecord& record = content.record;
  record.spec = spec_;
  record.step = step;
  record.num_labels = data_.labels.num_labels;
  record.label_names = data_.labels.names;
  record.train_sha256 = data_.train_sha256;
  record.validation_sha256 = data_.validation_sha256;
  record.train_loss = reporter_->last_train_loss();
  record.eval = last_eval_;
  content.optimizer_state = optimizer_->StateTensors();
  content.optimizer_steps = optimizer_->step_count();
  content.rng_state = CpuGeneratorState();
  content.progress.train_loss = reporter_->last_train_loss();
  return keeper_->Save(std::move(content), last_eval_);
}

std::optional<PeftLoraConfig> TrainingRun::AdapterConfig() const {
  if (spec_.method == Method::kFull) return std::nullopt;
  PeftLoraConfig config;
  config.task_type = model_->PeftTaskType();
  config.base_model_name_or_path = spec_.model_dir;
  config.r = spec_.lora_rank;
  config.lora_alpha = spec_.lora_alpha;
  config.lora_dropout = spec_.lora_dropout;
  config.use_rslora = spec_.use_rslora;
  config.use_dora = spec_.method == Method::kDora;
  config.target_modules = model_->TargetModuleNames();
  config.modules_to_save = model_->ModulesToSave();
  return config;
}

absl::StatusOr<TrainResult> TrainingRun::Stop(int64_t step) {
  RETURN_IF_ERROR(reporter_->Flush());
  if (step > keeper_->last_step()) RETURN_IF_ERROR(SaveCheckpoint(step));
  return Finish(Outcome::kStopped, step);
}

TrainResult TrainingRun::Finish(Outcome outcome, int64_t steps) const {
  TrainResult result;
  result.outcome = outcome;
  result.steps = steps;
  result.final_eval = last_eval_;
  result.stopped_early = early_stopping_.reason();
  result.final_checkpoint = keeper_->last();
  result.total_parameters = model_->TotalParameters();
  result.trainable_parameters = TrainableParameterCount();
  result.graph_replays = step_graphs_ != nullptr ? step_graphs_->replays() : 0;
  return result;
}

SpecCheck TrainingRun::SetupSummary() const {
  SpecCheck s;
  s.total_parameters = model_->TotalParameters();
  s.trainable_parameters = TrainableParameterCount();
  s.base_model_bytes = WeightBytes(spec_.model_dir, options_.data_roots);
  s.num_labels = data_.labels.num_labels;
  s.train_examples = static_cast<int64_t>(data_.train.size());
  s.validation_examples = static_cast<int64_t>(data_.validation.size());
  return s;
}

int64_t TrainingRun::TrainableParameterCount() const {
  int64_t count = 0;
  for (const TrainableParam& p : params_) count += p.tensor.numel();
  return count;
}

MaskMode TrainingRun::MaskModeOf() const {
  return options_.speed.unmasked_attention ? MaskMode::kOmitWhenNoPadding : MaskMode::kAlways;
}

}  // namespace attune::engine
