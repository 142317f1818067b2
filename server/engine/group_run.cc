// TrainingGroup (training_group.h): the members' TrainingRuns, stepped together.
#include <algorithm>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"
#include "server/engine/cuda_graph_step.h"
#include "server/engine/exception_status.h"
#include "server/engine/group_batch.h"
#include "server/engine/group_graph.h"
#include "server/engine/segmented_lora.h"
#include "server/engine/training_group.h"
#include "server/engine/training_run.h"

namespace attune::engine {
namespace {

struct Member {
  GroupJob job;
  int64_t fused_replays = 0;   // its fused steps that were graph replays
  std::set<std::string> told;  // the others' names its observer last heard of
  TrainingGroup::Done done;
  std::unique_ptr<TrainingRun> run;
  std::optional<Batch> batch;  // this step's
};

// Member j's loss on its part of the joined step's trunk.
torch::Tensor MemberLoss(Member& m, const Batch& batch, const torch::Tensor& trunk,
                         const GroupBatch& g, size_t j, int64_t row, int64_t example) {
  Model& model = m.run->model();
  if (m.job.spec.task == Task::kCausalLm) {
    const torch::Tensor hidden = trunk.narrow(0, row, g.rows[j]).narrow(1, 0, g.lengths[j]);
    return model.TrunkLmLoss(hidden, batch.labels);
  }
  return Loss(model.HeadLogits(trunk.narrow(0, example, g.examples[j])), batch, m.job.spec.task);
}

// The members' projections matched (segmented_lora.h), kept while the same members step together.
struct MatchedMembers {
  std::vector<Member*> members;
  AdapterGroup adapters;
};

// One forward and backward pass over the members' `batches`; then each member's own update. The
// caller holds CudaRngMutex shared (or captures it as a graph).
std::vector<StepOutputs> FusedStep(const std::vector<Member*>& members,
                                   const std::vector<const Batch*>& batches,
                                   MatchedMembers* matched,
                                   const std::function<bool()>& oom_after_backward) {
  std::vector<Model*> models;
  for (Member* m : members) models.push_back(&m->run->model());
  const torch::Device device = batches[0]->input_ids.device();
  const GroupBatch g = ConcatBatches(batches, members[0]->run->pad_id());
  if (matched->members != members) *matched = {members, MatchProjections(models, g.rows)};
  AdapterGroup& adapters = matched->adapters;
  adapters.rows = g.rows;
  std::vector<torch::Tensor> losses;
  {
    AutocastGuard autocast(device);
    AdapterGroupScope scope(&adapters);
    const torch::Tensor trunk = models[0]->Trunk(g.input_ids, g.attention_mask, g.packing);
    int64_t row = 0;
    int64_t example = 0;
    for (size_t j = 0; j < members.size(); ++j) {
      losses.push_back(MemberLoss(*members[j], *batches[j], trunk, g, j, row, example));
      row += g.rows[j];
      example += g.examples[j];
    }
  }
  torch::stack(losses).sum().backward();
  TORCH_CHECK_WITH(OutOfMemoryError, !(oom_after_backward && oom_after_backward()),
                   "injected by a test after the fused backward pass");
  std::vector<StepOutputs> outs;
  for (size_t j = 0; j < members.size(); ++j) {
    outs.push_back(members[j]->run->FinishBackward(losses[j].detach()));
  }
  return outs;
}

}  // namespace

std::string GroupIncompatibility(const GroupJob& job, const GroupJob& other) {
  const TrainSpec& a = job.spec;
  const TrainSpec& b = other.spec;
  if (a.method != Method::kLora) {
    return absl::StrCat("method: ", MethodName(a.method),
                        " changes the frozen product itself; only lora jobs share a base");
  }
  if (job.options.parallel.world_size > 1) return "ranks: a job of several ranks trains alone";
  if (b.method != Method::kLora || other.options.parallel.world_size > 1) {
    return "the group's job trains alone";
  }
  if (a.model_dir != b.model_dir) {
    return absl::StrCat("model_dir: '", a.model_dir, "' is not the group's '", b.model_dir, "'");
  }
  if (job.options.device != other.options.device) {
    return absl::StrCat("device: ", job.options.device, " is not the group's ",
                        other.options.device);
  }
  if (a.task != b.task) {
    return absl::StrCat("task: ", TaskName(a.task), " does not share a step with the group's ",
                        TaskName(b.task));
  }
  if (a.max_seq_len != b.max_seq_len || a.packing != b.packing) {
    return absl::StrCat("max_seq_len and packing: ", a.max_seq_len, a.packing ? " packed" : "",
                        " is not the group's ", b.max_seq_len, b.packing ? " packed" : "");
  }
  return "";
}

class TrainingGroup::Impl {
 public:
  bool Join(GroupJob job, Done done, std::string* why) {
    absl::MutexLock lock(&mu_);
    if (ended_) {
      *why = "the group has ended";
      return false;
    }
    if (first_.has_value()) {
      *why = GroupIncompatibility(job, *first_);
      if (!why->empty()) return false;
    } else {
      *why = GroupIncompatibility(job, job);
      if (!why->empty()) return false;
      first_ = job;
    }
    auto member = std::make_unique<Member>();
    member->job = std::move(job);
    member->done = std::move(done);
    joining_.push_back(std::move(member));
    return true;
  }

  bool fuse_ = true;                    // Run's thread only, once Run has started
  std::function<bool()> oom_for_test_;  // set_fused_step_oom_for_test

  void Run() {
    while (Admit()) Step();
    graph_.reset();  // on this thread: its side stream was made current here
  }

 private:
  // Starts the members waiting to join. False once none is left: the group has ended.
  bool Admit() {
    std::vector<std::unique_ptr<Member>> joining;
    {
      absl::MutexLock lock(&mu_);
      joining.swap(joining_);
      if (joining.empty() && members_.empty()) {
        ended_ = true;
        return false;
      }
    }
    if (joining.empty()) return true;
    for (std::unique_ptr<Member>& m : joining) {
      m->run = std::make_unique<TrainingRun>(m->job.spec, m->job.options, m->job.observer, cache_);
      absl::Status begun = CatchExceptions("training", [&] { return m->run->Begin(); });
      if (!begun.ok()) {
        m->done(begun);
        continue;
      }
      members_.push_back(std::move(m));
    }
    MembersChanged();
    return true;
  }

  // One step of every member that has one; members whose run ended leave.
  void Step() {
    std::vector<Member*> stepping;
    std::vector<int> leaving;
    for (size_t i = 0; i < members_.size(); ++i) {
      Member& m = *members_[i];
      auto batch = CatchExceptions("training", [&] { return m.run->PrepareStep(); });
      if (batch.ok() && batch->has_value()) {
        m.batch = std::move(**batch);
        stepping.push_back(&m);
      } else {
        m.done(batch.ok() ? WithReplays(m.run->Result(), m.fused_replays) : batch.status());
        leaving.push_back(static_cast<int>(i));
      }
    }
    if (!stepping.empty()) StepMembers(stepping, &leaving);
    if (leaving.empty()) return;
    std::sort(leaving.begin(), leaving.end());
    for (auto it = leaving.rbegin(); it != leaving.rend(); ++it)
      members_.erase(members_.begin() + *it);
    MembersChanged();
  }

  void StepMembers(const std::vector<Member*>& stepping, std::vector<int>* leaving) {
    std::vector<absl::StatusOr<StepOutputs>> outs = Outputs(stepping);
    for (size_t j = 0; j < stepping.size(); ++j) {
      Member& m = *stepping[j];
      absl::Status status = outs[j].status();
      if (status.ok()) {
        status = CatchExceptions(
            "training", [&] { return m.run->CompleteStep(*m.batch, *std::move(outs[j])); });
      }
      m.batch.reset();
      if (status.ok()) continue;
      m.done(status);
      leaving->push_back(IndexOf(&m));
    }
  }

  // Each stepping member's step: one fused step, or each member's own (alone, unfused, or once a
  // fused step has run out of memory: the group then stops fusing, and each member's gradients
  // of the failed step are discarded before it takes the step on its own).
  std::vector<absl::StatusOr<StepOutputs>> Outputs(const std::vector<Member*>& stepping) {
    if (stepping.size() > 1 && fuse_) {
      absl::StatusOr<std::vector<StepOutputs>> fused =
          CatchExceptions("training", [&] { return GroupStep(stepping); });
      if (fused.ok()) return {fused->begin(), fused->end()};
      if (!absl::IsResourceExhausted(fused.status())) {
        return std::vector<absl::StatusOr<StepOutputs>>(stepping.size(), fused.status());
      }
      fuse_ = false;
      if (graph_ != nullptr) graph_->Reset();
      for (Member* m : stepping) {
        m->run->DiscardGradients();
        m->job.observer->OnWarning(absl::StrCat(
            "the shared-base group's fused step ran out of memory (", fused.status().message(),
            "); its members now take their steps one after another over the shared base"));
      }
    }
    std::vector<absl::StatusOr<StepOutputs>> outs;
    for (Member* m : stepping) {
      outs.push_back(CatchExceptions("training", [&] { return m->run->RunStep(*m->batch); }));
    }
    return outs;
  }

  // The fused step: a CUDA graph's replay when GroupGraph has one, else eagerly.
  absl::StatusOr<std::vector<StepOutputs>> GroupStep(const std::vector<Member*>& stepping) {
    std::vector<const Batch*> batches;
    int64_t steps_left = std::numeric_limits<int64_t>::max();
    for (Member* m : stepping) {
      batches.push_back(&*m->batch);
      steps_left = std::min(steps_left, m->run->steps_left() - 1);  // after this one
    }
    if (graph_ == nullptr) {
      graph_ = std::make_unique<GroupGraph>(
          batches[0]->input_ids.device(),
          [this](const std::string& message) { CaptureFailed(message); });
    }
    if (matched_.members != stepping) graph_->Reset();
    const GroupGraph::Body body = [this, &stepping](const std::vector<const Batch*>& b) {
      return FusedStep(stepping, b, &matched_, oom_for_test_);
    };
    const int64_t replays = graph_->replays();
    ASSIGN_OR_RETURN(std::optional<std::vector<StepOutputs>> graphed,
                     graph_->Run(batches, steps_left, body));
    if (graphed.has_value()) {
      if (graph_->replays() > replays) {
        for (Member* m : stepping) ++m->fused_replays;
      }
      return *std::move(graphed);
    }
    absl::ReaderMutexLock shared(&CudaRngMutex());  // no job captures a CUDA graph meanwhile
    return FusedStep(stepping, batches, &matched_, oom_for_test_);
  }

  void CaptureFailed(const std::string& message) {
    for (const auto& m : members_) {
      m->run->DiscardGradients();
      m->job.observer->OnWarning(absl::StrCat(
          "CUDA graphs turned off for this shared-base group, its steps run eagerly: ", message));
    }
  }

  static absl::StatusOr<TrainResult> WithReplays(absl::StatusOr<TrainResult> result,
                                                 int64_t fused_replays) {
    if (result.ok()) result->graph_replays += fused_replays;
    return result;
  }

  int IndexOf(const Member* m) const {
    for (size_t i = 0; i < members_.size(); ++i) {
      if (members_[i].get() == m) return static_cast<int>(i);
    }
    return -1;
  }

  // After members joined or left: no match is kept (a new member may reuse a gone one's
  // address), and each member whose company changed hears whom it now trains beside.
  void MembersChanged() {
    matched_ = {};
    for (const auto& m : members_) {
      std::set<std::string> others;
      for (const auto& o : members_) {
        if (o != m) others.insert(o->job.name);
      }
      if (others.empty() || others == m->told) continue;
      m->told = others;
      m->job.observer->OnSharedBase({others.begin(), others.end()});
      m->job.observer->OnWarning(absl::StrCat(
          "shares its frozen base model with job(s) ", absl::StrJoin(others, ", "),
          " (attuned --share-base): one forward and backward pass over their batches, its own "
          "adapter, optimizer and checkpoints"));
    }
  }

  absl::Mutex mu_;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<GroupJob> first_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Member>> joining_ ABSL_GUARDED_BY(mu_);
  // Run's thread only.
  const std::shared_ptr<FrozenTensorCache> cache_ = std::make_shared<FrozenTensorCache>();
  std::vector<std::unique_ptr<Member>> members_;
  MatchedMembers matched_;             // the last fused step's
  std::unique_ptr<GroupGraph> graph_;  // from the first fused step to the end of Run
};

TrainingGroup::TrainingGroup() : impl_(std::make_unique<Impl>()) {}
TrainingGroup::~TrainingGroup() = default;

bool TrainingGroup::Join(GroupJob job, Done done, std::string* why) {
  return impl_->Join(std::move(job), std::move(done), why);
}

void TrainingGroup::Run() { impl_->Run(); }

void TrainingGroup::set_fuse(bool fuse) { impl_->fuse_ = fuse; }

void TrainingGroup::set_fused_step_oom_for_test(std::function<bool()> oom) {
  impl_->oom_for_test_ = std::move(oom);
}

std::vector<absl::StatusOr<TrainResult>> RunTrainingGroup(const std::vector<GroupJob>& jobs,
                                                          bool fuse) {
  std::vector<absl::StatusOr<TrainResult>> results(
      jobs.size(), absl::InternalError("training: the job did not run"));
  TrainingGroup group;
  group.set_fuse(fuse);
  for (size_t i = 0; i < jobs.size(); ++i) {
    std::string why;
    if (!group.Join(
            jobs[i], [&results, i](absl::StatusOr<TrainResult> r) { results[i] = std::move(r); },
            &why)) {
      results[i] = absl::InvalidArgumentError(why);
    }
  }
  group.Run();
  return results;
}

}  // namespace attune::engine
