#include "client/lifecycle_commands.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/job_text.h"

namespace attune::client {
namespace {

constexpr size_t kShaPrefix = 12;

// "ACCURACY" for EVAL_METRIC_ACCURACY; "EVAL" when the job names none.
std::string MetricColumn(v1::EvalMetric metric) {
  if (metric == v1::EVAL_METRIC_UNSPECIFIED) return "EVAL";
  return v1::EvalMetric_Name(metric).substr(sizeof("EVAL_METRIC_") - 1);
}

std::string Row(const std::vector<std::string>& cells) {
  return absl::StrFormat("%-8s %-11s %-10s %-4s %-10s %s\n", cells[0], cells[1], cells[2], cells[3],
                         cells[4], cells[5]);
}

}  // namespace

std::string CheckpointsTable(const v1::ListCheckpointsResponse& response) {
  if (response.checkpoints().empty()) return "no checkpoints yet\n";
  std::string out =
      Row({"STEP", "TRAIN_LOSS", MetricColumn(response.eval_metric()), "BEST", "BYTES", "SHA256"});
  for (const v1::CheckpointInfo& c : response.checkpoints()) {
    const std::string loss = c.has_train_loss() ? absl::StrFormat("%.4f", c.train_loss()) : "-";
    const std::string metric =
        c.has_eval_metric_value() ? absl::StrFormat("%.4f", c.eval_metric_value()) : "-";
    const std::string sha = c.sha256().empty() ? "-" : c.sha256().substr(0, kShaPrefix);
    out += Row({absl::StrCat(c.step()), loss, metric, c.best() ? "*" : "",
                c.sha256().empty() ? "-" : HumanBytes(c.bytes()), sha});
  }
  return out;
}

absl::Status RunCheckpoints(AttuneClient& client, const std::string& job_id, ResultFormat format,
                            std::ostream& out) {
  absl::StatusOr<v1::ListCheckpointsResponse> response = client.ListCheckpoints(job_id);
  if (!response.ok()) return response.status();
  out << (format == ResultFormat::kJson ? ToJson(*response) + "\n" : CheckpointsTable(*response))
      << std::flush;
  return absl::OkStatus();
}

absl::Status RunDelete(AttuneClient& client, const std::string& job_id, ResultFormat format,
                       std::ostream& out) {
  absl::StatusOr<v1::DeleteJobResponse> response = client.DeleteJob(job_id);
  if (!response.ok()) return response.status();
  if (format == ResultFormat::kJson) {
    out << ToJson(*response) << std::endl;
  } else {
    out << "deleted " << response->job_id() << " (freed " << HumanBytes(response->freed_bytes())
        << ")" << std::endl;
  }
  return absl::OkStatus();
}

}  // namespace attune::client
