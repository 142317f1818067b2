#include "server/api/checkpoint_list.h"

#include <map>
#include <string>

#include "common/eval_metric_value.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "google/protobuf/util/time_util.h"
#include "server/api/adapter_archive.h"
#include "server/api/proto_convert.h"

namespace attune::api {
namespace {

// Step -> the newest train loss and evaluation recorded at it.
struct StepRecords {
  std::map<int64_t, double> train_loss;
  std::map<int64_t, EvalMetrics> eval;
};

StepRecords IndexByStep(const std::vector<store::JobEvent>& step_events) {
  StepRecords records;
  for (const store::JobEvent& event : step_events) {
    if (event.step_metrics.has_value()) {
      records.train_loss[event.step] = event.step_metrics->train_loss;
    }
    if (event.eval.has_value()) records.eval[event.step] = *event.eval;
  }
  return records;
}

// Sets `info`'s bytes and sha256 from the checkpoint's files on disk, as a download would send
// them without the resume state; leaves them unset when the directory is gone.
absl::Status AddArchiveDigest(const store::CheckpointRecord& checkpoint, v1::CheckpointInfo* info) {
  absl::StatusOr<std::vector<ArchiveFile>> files =
      ListArchiveFiles(checkpoint.dir, /*include_resume_state=*/false);
  if (absl::IsNotFound(files.status())) return absl::OkStatus();
  if (!files.ok()) return files.status();
  std::vector<std::string> paths;
  int64_t bytes = 0;
  for (const ArchiveFile& file : *files) {
    paths.push_back(file.absolute_path);
    bytes += file.size;
  }
  ASSIGN_OR_RETURN(std::string sha256, Sha256Files(paths));
  info->set_bytes(bytes);
  info->set_sha256(sha256);
  return absl::OkStatus();
}

// The value of the job's metric in `eval`; for a job without one (kUnspecified), the accuracy
// where there is one, else the loss, as RankingMetric ranks it.
std::optional<double> ShownMetricValue(const EvalMetrics& eval, EvalMetric metric) {
  if (metric != EvalMetric::kUnspecified) return EvalMetricValue(eval, metric);
  return eval.accuracy.has_value() ? eval.accuracy : std::optional<double>(eval.loss);
}

}  // namespace

absl::StatusOr<v1::ListCheckpointsResponse> ListCheckpointsResponseFor(
    const store::Job& job, const std::vector<store::CheckpointRecord>& checkpoints,
    const std::vector<store::JobEvent>& step_events) {
  v1::ListCheckpointsResponse response;
  response.set_job_id(job.id);
  const EvalMetric metric = job.spec.train.eval_metric;
  response.set_eval_metric(EvalMetricToProto(metric));
  if (checkpoints.empty()) return response;
  ASSIGN_OR_RETURN(store::CheckpointRecord best, SelectCheckpoint(checkpoints, "best"));
  const StepRecords at = IndexByStep(step_events);
  for (const store::CheckpointRecord& checkpoint : checkpoints) {
    v1::CheckpointInfo* info = response.add_checkpoints();
    info->set_step(checkpoint.step);
    *info->mutable_create_time() =
        google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(checkpoint.created_us);
    if (auto loss = at.train_loss.find(checkpoint.step); loss != at.train_loss.end()) {
      info->set_train_loss(loss->second);
    }
    if (auto eval = at.eval.find(checkpoint.step); eval != at.eval.end()) {
      EvalToProto(eval->second, info->mutable_eval());
      if (std::optional<double> value = ShownMetricValue(eval->second, metric)) {
        info->set_eval_metric_value(*value);
      }
    }
    info->set_best(checkpoint.step == best.step);
    info->set_adapter_model_sha256(checkpoint.sha256);
    RETURN_IF_ERROR(AddArchiveDigest(checkpoint, info));
  }
  return response;
}

}  // namespace attune::api
