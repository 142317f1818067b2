// attune-multi-lora-bench: several LoRA jobs over one base, trained as one shared-base group
// (engine/training_group.h) or one after another (engine::RunTraining each), timed; prints JSON.
//
//   --jobs "q,v:1/q,k,v:1/q,v:4/q,k,v:4"   each job's targets and v learning-rate ratio
//   --mode group | group-unfused | sequential
// Every job gets the same data file, batch, length, steps, rank and learning rate, and its own
// seed (--seed + its index), so the jobs see their data in different orders.
//
// The JSON holds:
//   window_s        group: from the moment every job has reported step --timing-warmup (device
//                   synchronised) to the end of the run (synchronised); sequential: the sum over
//                   the jobs of the same window of each job's run. Setup (loading, tokenizing) is
//                   outside it in both modes.
//   tokens          the real (non-padding) tokens of the steps in the window, all jobs together.
//   tokens_per_s    tokens / window_s: the aggregate throughput.
//   peak_device_gib the CUDA caching allocator's peak allocated bytes over the whole process
//                   (sequential: the largest one job reached, jobs run one at a time).
//   jobs            each job's targets, ratio and every step's loss.
// Every job reads its losses back each step (metrics_every 1) in both modes, so the window's
// edges are exact; the engine's default reads less often.
#include <sys/resource.h>
#include <torch/torch.h>

#if defined(ATTUNE_BENCH_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_split.h"
#include "bench/bench_observer.h"
#include "common/job_spec.h"
#include "nlohmann/json.hpp"
#include "server/engine/trainer.h"
#include "server/engine/training_group.h"

namespace attune::bench {
namespace {

using nlohmann::json;

// One job's steps, and the time it reported step `warmup` (device synchronised then).
class JobObserver : public engine::TrainingObserver {
 public:
  JobObserver(std::string device, int64_t warmup) : device_(std::move(device)), warmup_(warmup) {}
  void OnStep(const engine::StepMetrics& m) override {
    if (m.step == warmup_) {
      SyncDevice(device_);
      warm_at = Clock::now();
    }
    if (m.step > warmup_) window_tokens += m.tokens;
    losses.push_back(m.train_loss);
  }
  void OnEval(const engine::EvalMetrics&) override {}
  void OnCheckpoint(const engine::CheckpointInfo&) override {}
  void OnWarning(const std::string& message) override { std::cerr << message << "\n"; }
  bool StopRequested() override { return false; }

  Clock::time_point warm_at;
  int64_t window_tokens = 0;
  std::vector<double> losses;

 private:
  const std::string device_;
  const int64_t warmup_;
};

json PeakDeviceGib(const std::string& device) {
#if defined(ATTUNE_BENCH_CUDA)
  if (device.rfind("cuda", 0) == 0) {
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(0);
    return static_cast<double>(stats.allocated_bytes[0].peak) / (1024.0 * 1024.0 * 1024.0);
  }
#endif
  return json();
}

struct Job {
  std::string targets;
  double v_ratio = 1;
};

std::vector<Job> ParseJobs(const std::string& text) {
  std::vector<Job> jobs;
  for (absl::string_view part : absl::StrSplit(text, '/')) {
    std::vector<std::string> fields = absl::StrSplit(part, ':');
    jobs.push_back({fields[0], fields.size() > 1 ? std::stod(fields[1]) : 1.0});
  }
  return jobs;
}

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace
}  // namespace attune::bench

int main(int argc, char** argv) {
  using namespace attune;
  using namespace attune::bench;
  CLI::App app{"attune-multi-lora-bench: LoRA jobs over one base, grouped or one by one"};
  TrainSpec base;
  std::string task = "causal-lm", jobs_text = "q,v:1/q,k,v:1/q,v:4/q,k,v:4", mode = "group";
  std::string device = "cuda:0", out_dir = "/tmp/attune_multi_lora", label;
  int64_t warmup = 5;
  app.add_option("--model", base.model_dir)->required();
  app.add_option("--train", base.train_path)->required();
  app.add_option("--task", task);
  app.add_option("--batch", base.batch_size);
  app.add_option("--seq-len", base.max_seq_len);
  app.add_option("--steps", base.max_steps)->required();
  app.add_option("--rank", base.lora_rank);
  app.add_option("--lr", base.learning_rate);
  app.add_option("--seed", base.seed);
  app.add_option("--jobs", jobs_text);
  app.add_option("--mode", mode)->check(CLI::IsMember({"group", "group-unfused", "sequential"}));
  app.add_option("--device", device);
  app.add_option("--timing-warmup", warmup);
  app.add_option("--output-dir", out_dir);
  app.add_option("--label", label);
  CLI11_PARSE(app, argc, argv);
  base.task = task == "causal-lm"    ? Task::kCausalLm
              : task == "regression" ? Task::kRegression
                                     : Task::kSequenceClassification;
  base.lora_alpha = base.lora_rank;
  base.warmup_steps = 0;

  const std::vector<Job> jobs = ParseJobs(jobs_text);
  std::vector<std::unique_ptr<JobObserver>> observers;
  std::vector<engine::GroupJob> group_jobs;
  for (size_t i = 0; i < jobs.size(); ++i) {
    engine::GroupJob job;
    job.name = "job" + std::to_string(i);
    job.spec = base;
    job.spec.targets = absl::StrSplit(jobs[i].targets, ',');
    job.spec.lr_ratios = {{"v", jobs[i].v_ratio}};
    job.spec.seed = base.seed + i;
    job.options.device = device;
    job.options.output_dir = out_dir + "/" + mode + std::to_string(i);
    job.options.resume = engine::ResumeMode::kFresh;
    job.options.speed.metrics_every = 1;
    observers.push_back(std::make_unique<JobObserver>(device, warmup));
    job.observer = observers.back().get();
    group_jobs.push_back(std::move(job));
  }

  double window_s = 0;
  json failures = json::array();
  std::vector<int64_t> replays(jobs.size(), 0);  // each job's steps that were graph replays
  if (mode != "sequential") {
    std::vector<absl::StatusOr<engine::TrainResult>> results =
        engine::RunTrainingGroup(group_jobs, /*fuse=*/mode == "group");
    SyncDevice(device);
    const Clock::time_point end = Clock::now();
    Clock::time_point warm = observers[0]->warm_at;
    for (const auto& o : observers) warm = std::max(warm, o->warm_at);
    window_s = Seconds(warm, end);
    for (size_t i = 0; i < results.size(); ++i) {
      if (!results[i].ok()) failures.push_back(results[i].status().ToString());
      if (results[i].ok()) replays[i] = results[i]->graph_replays;
    }
  } else {
    for (size_t i = 0; i < group_jobs.size(); ++i) {
      auto r = engine::RunTraining(group_jobs[i].spec, group_jobs[i].options, observers[i].get());
      SyncDevice(device);
      window_s += Seconds(observers[i]->warm_at, Clock::now());
      if (!r.ok()) failures.push_back(r.status().ToString());
      if (r.ok()) replays[i] = r->graph_replays;
    }
  }
  json out;
  out["label"] = label;
  out["mode"] = mode;
  out["window_s"] = window_s;
  int64_t tokens = 0;
  json per_job = json::array();
  for (size_t i = 0; i < jobs.size(); ++i) {
    tokens += observers[i]->window_tokens;
    per_job.push_back({{"targets", jobs[i].targets},
                       {"v_ratio", jobs[i].v_ratio},
                       {"window_tokens", observers[i]->window_tokens},
                       {"graph_replays", replays[i]},
                       {"losses", observers[i]->losses}});
  }
  out["tokens"] = tokens;
  out["tokens_per_s"] = window_s > 0 ? tokens / window_s : 0;
  out["peak_device_gib"] = PeakDeviceGib(device);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  out["peak_rss_gib"] = static_cast<double>(usage.ru_maxrss) / (1024.0 * 1024.0);
  out["failures"] = failures;
  out["jobs"] = per_job;
  std::cout << out.dump() << "\n";
  return failures.empty() ? 0 : 1;
}
