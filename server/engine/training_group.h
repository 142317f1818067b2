// Several LoRA jobs trained together on one device over one copy of their frozen base model
// (shared-base groups). Plain C++ (no LibTorch), like trainer.h.
//
// Each member keeps everything that is its own: adapters, head, optimizer, data order,
// learning-rate schedule, checkpoints (in its own output_dir), events and result. What the
// members share is the frozen base: its tensors are loaded once (the first member's load reads
// them, the others' find them in the group's cache), and each step is one forward and backward
// pass over all members' batches, concatenated, in which each member's adapter applies only to
// its own rows (segmented_lora.h). A member's loss, gradients and update are its own: a
// non-finite loss in one member skips only that member's update.
//
// Members join and leave at step boundaries. A member that completes, fails, is stopped (its
// observer's StopRequested) or stops early leaves without disturbing the others; a job that
// joins starts (or resumes from its own newest checkpoint) at the next step. With one member the
// step is the job's own (exactly RunTraining's, CUDA graphs included).
//
// What a group changes in a member's numbers: the order of floating-point sums in the shared
// products (a member's losses equal its solo run's to rounding, tested to 1e-5 relative over 50
// steps in fp32), and dropout's draws (the same distribution, other samples: the members share
// the CPU generator).
#ifndef ATTUNE_SERVER_ENGINE_TRAINING_GROUP_H_
#define ATTUNE_SERVER_ENGINE_TRAINING_GROUP_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/job_spec.h"
#include "server/engine/trainer.h"

namespace attune::engine {

struct GroupJob {
  // The job's name (attuned's job id): whenever the members change, each member's observer hears
  // the names of those it now trains beside (OnSharedBase, and a warning naming them).
  std::string name;
  TrainSpec spec;
  RunOptions options;                    // options.parallel must be one process (world_size 1)
  TrainingObserver* observer = nullptr;  // must outlive the job's time in the group
};

// Why `job` cannot train beside `other` over one base, naming the field ("model_dir: ..."); empty
// when it can. Grouped jobs need the same model_dir, device, task, max_seq_len and packing, LoRA
// (DoRA and full fine-tuning change the frozen product itself) and one process each; their
// targets, ranks, alphas, learning rates and ratios, data, batch sizes and seeds may differ.
std::string GroupIncompatibility(const GroupJob& job, const GroupJob& other);

class TrainingGroup {
 public:
  using Done = std::function<void(absl::StatusOr<TrainResult>)>;

  TrainingGroup();
  ~TrainingGroup();
  TrainingGroup(const TrainingGroup&) = delete;
  TrainingGroup& operator=(const TrainingGroup&) = delete;

  // Adds `job`; it starts at the group's next step boundary, and `done` is called on Run's thread
  // with its result (as RunTraining's) when it leaves. Returns false, with the reason in *why,
  // when it is incompatible with the group's first job or the group has ended. Thread-safe.
  bool Join(GroupJob job, Done done, std::string* why);

  // Trains until no member is left and none is waiting to join; then the group has ended. Call
  // once. Never throws.
  void Run();

  // Call before Run. Fused (the default): each step is one forward and backward pass over every
  // member's batch. Not fused: the members take their own steps one after another over the
  // shared base, so the group holds one step's activations at a time (about one job's memory and
  // the members' adapters), at the rate of the jobs run one after another. A fused step that
  // runs out of memory turns fusing off for the rest of the group's life (each member gets a
  // warning), and the step is taken again member by member.
  void set_fuse(bool fuse);
  // Tests: after every fused step's backward pass, `oom` says whether to fail the step as LibTorch
  // does when the device runs out of memory (c10::OutOfMemoryError).
  void set_fused_step_oom_for_test(std::function<bool()> oom);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Trains `jobs` as one group from the start (fused unless `fuse` is false); their results in
// order.
std::vector<absl::StatusOr<TrainResult>> RunTrainingGroup(const std::vector<GroupJob>& jobs,
                                                          bool fuse = true);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_TRAINING_GROUP_H_
