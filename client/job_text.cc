#include "client/job_text.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "client/job_spec_input.h"
#include "client/progress_bar.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"

namespace attune::client {
namespace {

std::string TimeText(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "-";
  absl::Time time = absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", time, absl::LocalTimeZone());
}

std::string Number(double value) { return absl::StrFormat("%.4g", value); }

// The job's spec for `attune get`: model, task, learning rates and data.
void AppendSpecLines(const v1::JobSpec& spec, std::string* out_ptr) {
  std::string& out = *out_ptr;
  absl::StrAppend(&out, "  model     ", spec.model(), "\n");
  absl::StrAppend(&out, "  task      ", TaskShortName(spec.task()), ", ",
                  MethodShortName(spec.method()), " on ", absl::StrJoin(spec.targets(), ","));
  if (spec.method() != v1::METHOD_FULL && spec.lora().has_rank()) {
    absl::StrAppend(&out, ", rank ", spec.lora().rank());
  }
  absl::StrAppend(&out, "\n");
  std::vector<std::string> ratios;
  for (const auto& [k, v] : spec.lr_ratios()) ratios.push_back(absl::StrCat(k, "=", Number(v)));
  std::sort(ratios.begin(), ratios.end());
  absl::StrAppend(&out, "  lr        ",
                  spec.has_learning_rate() ? Number(spec.learning_rate()) : "default",
                  ratios.empty() ? "" : "  ratios " + absl::StrJoin(ratios, ","), "\n");
  absl::StrAppend(&out, "  train     ", spec.train(), "\n");
  if (!spec.validation().empty()) absl::StrAppend(&out, "  validate  ", spec.validation(), "\n");
  if (spec.eval_metric() != v1::EVAL_METRIC_UNSPECIFIED) {
    absl::StrAppend(&out, "  best by   eval ", EvalMetricShortName(spec.eval_metric()),
                    spec.early_stopping_patience() > 0
                        ? absl::StrCat("; early stopping after ", spec.early_stopping_patience(),
                                       " evaluations without improvement")
                        : "",
                    "\n");
  }
}

}  // namespace

std::string HumanBytes(int64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  if (unit == 0) return absl::StrCat(bytes, " B");
  if (value < 10) return absl::StrFormat("%.1f %s", value, kUnits[unit]);
  return absl::StrFormat("%.0f %s", value, kUnits[unit]);
}

std::string StateName(v1::JobState state) { return v1::JobState_Name(state); }

std::string StorageSummary(const v1::Job& job) {
  if (job.adapter_bytes() <= 0 || job.base_model_bytes() <= 0) return "";
  double percent = 100.0 * job.adapter_bytes() / job.base_model_bytes();
  return absl::StrFormat(
      "adapter %s, %s%% of the %s base model", HumanBytes(job.adapter_bytes()),
      percent < 10 ? absl::StrFormat("%.2f", percent) : absl::StrFormat("%.1f", percent),
      HumanBytes(job.base_model_bytes()));
}

std::string JobSummary(const v1::Job& job) {
  const v1::JobSpec& spec = job.spec();
  std::string out;
  absl::StrAppend(&out, "job ", job.id(), spec.name().empty() ? "" : "  (" + spec.name() + ")",
                  "\n");
  absl::StrAppend(&out, "  state     ", StateName(job.state()));
  if (job.total_steps() > 0) {
    absl::StrAppend(&out, "  step ", job.current_step(), "/", job.total_steps());
  }
  absl::StrAppend(&out, "\n");
  if (!job.error().empty()) absl::StrAppend(&out, "  error     ", job.error(), "\n");
  AppendSpecLines(spec, &out);
  absl::StrAppend(&out, "  created   ", TimeText(job.create_time()), "\n");
  absl::StrAppend(&out, "  started   ", TimeText(job.start_time()), "\n");
  absl::StrAppend(&out, "  finished  ", TimeText(job.finish_time()), "\n");
  if (job.shared_base_with_size() > 0) {
    absl::StrAppend(&out, "  shared    its base with ", absl::StrJoin(job.shared_base_with(), ","),
                    "\n");
  }
  if (job.devices_size() > 0) {
    absl::StrAppend(&out, "  devices   ", job.state() == v1::RUNNING ? "running on " : "ran on ",
                    absl::StrJoin(job.devices(), ","), "\n");
  }
  if (job.total_parameters() > 0) {
    absl::StrAppend(
        &out, "  params    ", job.trainable_parameters(), " trainable of ", job.total_parameters(),
        absl::StrFormat(" (%.2f%%)", 100.0 * job.trainable_parameters() / job.total_parameters()),
        "\n");
  }
  std::string storage = StorageSummary(job);
  if (!storage.empty()) absl::StrAppend(&out, "  storage   ", storage, "\n");
  if (job.artifact_bytes() > 0) {
    absl::StrAppend(&out, "  on disk   ", HumanBytes(job.artifact_bytes()),
                    " of checkpoints on the server\n");
  }
  if (!job.metrics().empty()) {
    std::vector<std::string> metrics;
    for (const auto& [k, v] : job.metrics()) metrics.push_back(absl::StrCat(k, "=", Number(v)));
    std::sort(metrics.begin(), metrics.end());
    absl::StrAppend(&out, "  metrics   ", absl::StrJoin(metrics, " "), "\n");
  }
  return out;
}

std::string JobListLine(const v1::Job& job) {
  std::string progress =
      job.total_steps() > 0 ? absl::StrCat(job.current_step(), "/", job.total_steps()) : "-";
  return absl::StrFormat("%-12s %-10s %-11s %s", job.id(), StateName(job.state()), progress,
                         job.spec().name());
}

std::string EventLine(const v1::JobEvent& event) {
  std::string head = absl::StrCat("#", event.sequence(), " ");
  switch (event.payload_case()) {
    case v1::JobEvent::kStateChange: {
      const auto& sc = event.state_change();
      std::string out = absl::StrCat(head, "state ", StateName(sc.state()));
      if (sc.devices_size() > 0) absl::StrAppend(&out, " on ", absl::StrJoin(sc.devices(), ","));
      if (!sc.message().empty()) absl::StrAppend(&out, ": ", sc.message());
      return out;
    }
    case v1::JobEvent::kStep: {
      const auto& s = event.step();
      return absl::StrCat(head, "step ", s.step(), "/", s.total_steps(), " epoch ",
                          absl::StrFormat("%.2f", s.epoch()), " loss ", Number(s.train_loss()),
                          " grad_norm ", Number(s.grad_norm()),
                          s.skipped() ? " (skipped: non-finite loss)" : "");
    }
    case v1::JobEvent::kEval: {
      const auto& e = event.eval();
      std::string out = absl::StrCat(head, "eval step ", e.step(), " loss ", Number(e.loss()));
      if (e.has_accuracy()) absl::StrAppend(&out, " accuracy ", Number(e.accuracy()));
      if (e.has_f1()) absl::StrAppend(&out, " f1 ", Number(e.f1()));
      if (e.has_mcc()) absl::StrAppend(&out, " mcc ", Number(e.mcc()));
      if (e.has_pearson()) absl::StrAppend(&out, " pearson ", Number(e.pearson()));
      if (e.has_spearman()) absl::StrAppend(&out, " spearman ", Number(e.spearman()));
      if (e.has_perplexity()) absl::StrAppend(&out, " perplexity ", Number(e.perplexity()));
      return out;
    }
    case v1::JobEvent::kCheckpoint:
      return absl::StrCat(head, "checkpoint step ", event.checkpoint().step(), " ",
                          HumanBytes(event.checkpoint().adapter_bytes()));
    case v1::JobEvent::kWarning:
      return absl::StrCat(head, "warning: ", event.warning().message());
    case v1::JobEvent::kError:
      return absl::StrCat(head, "error: ", event.error().message());
    case v1::JobEvent::PAYLOAD_NOT_SET:
      break;
  }
  return absl::StrCat(head, "(empty event)");
}

std::string StepProgressText(const v1::JobEvent::StepMetrics& step, double eta_seconds) {
  std::string text = absl::StrCat(step.step(), "/", step.total_steps(), " loss ",
                                  absl::StrFormat("%.4f", step.train_loss()));
  if (eta_seconds >= 0) absl::StrAppend(&text, " ETA ", DurationText(eta_seconds));
  return text;
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

}  // namespace attune::client
