#include "server/worker/job_runners.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/engine/training_group.h"
#include "server/scheduler/device_inventory.h"
#include "server/worker/worker_protocol.h"

namespace attune::worker {

absl::StatusOr<std::unique_ptr<scheduler::JobRunner>> MakeJobRunner(
    const JobRunnerOptions& options, Supervisor* supervisor, std::unique_ptr<grpc::Server>* workers,
    std::string* worker_listen_bound) {
  ASSIGN_OR_RETURN(auto shares_base, SharesBase(options.share_base));
  if (!options.job_processes) {
    return std::make_unique<scheduler::EngineJobRunner>(options.data_roots, shares_base);
  }
  WorkerOptions worker_options;
  worker_options.shares_base = shares_base;
  worker_options.worker_binary =
      options.worker_binary.empty() ? DefaultWorkerBinary() : options.worker_binary;
  worker_options.data_roots = options.data_roots;
  worker_options.one_rank_collectives = options.one_rank_collectives;
  if (!options.worker_listen.empty()) {
    if (options.worker_token_file.empty()) {
      return absl::InvalidArgumentError(
          "--worker-listen needs --worker-token-file (the token remote workers send)");
    }
    ASSIGN_OR_RETURN(std::string token,
                     ReadWorkerToken("--worker-token-file", options.worker_token_file));
    supervisor->set_join_token(std::move(token));
    worker_options.remote_host = options.worker_listen.substr(0, options.worker_listen.rfind(':'));
  }
  ASSIGN_OR_RETURN(*workers, ServeSupervisor(options.data_dir + "/run/workers.sock", supervisor,
                                             &worker_options.supervisor_address,
                                             options.worker_listen, worker_listen_bound));
  return std::make_unique<WorkerJobRunner>(std::move(worker_options), supervisor);
}

absl::StatusOr<std::function<bool(const std::string& device)>> SharesBase(const std::string& mode) {
  if (mode == "off") return nullptr;
  if (mode == "on") return [](const std::string&) { return true; };
  if (mode == "gpus") return [](const std::string& device) { return device.rfind("cuda", 0) == 0; };
  return absl::InvalidArgumentError(
      absl::StrCat("--share-base: '", mode, "' is not one of on, gpus, off"));
}

std::function<bool(const std::string& device)> ShareDeviceRule(const JobRunnerOptions& options) {
  absl::StatusOr<std::function<bool(const std::string&)>> shares = SharesBase(options.share_base);
  if (!shares.ok() || *shares == nullptr) return nullptr;
  return [shares = *shares](const std::string& device) {
    return device != scheduler::kRemoteCpu && shares(device);
  };
}

std::function<std::string(const TrainSpec&, const TrainSpec&, const std::string&)> ShareBaseRule(
    const JobRunnerOptions& options) {
  if (ShareDeviceRule(options) == nullptr) return nullptr;
  return [](const TrainSpec& job, const TrainSpec& running, const std::string& device) {
    engine::GroupJob a{"", job, {}, nullptr};
    engine::GroupJob b{"", running, {}, nullptr};
    a.options.device = b.options.device = device;
    return engine::GroupIncompatibility(a, b);
  };
}

}  // namespace attune::worker
