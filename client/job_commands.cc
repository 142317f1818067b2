#include "client/job_commands.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/job_text.h"
#include "client/progress_bar.h"

namespace attune::client {

int ExitCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 0;
    case absl::StatusCode::kInvalidArgument:
      return 2;
    case absl::StatusCode::kNotFound:
      return 3;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return 4;
    default:
      return 1;
  }
}

int Fail(const absl::Status& status) {
  std::cerr << "attune: " << absl::StatusCodeToString(status.code()) << ": " << status.message()
            << "\n";
  return ExitCodeFor(status);
}

int Finish(const absl::Status& status) { return status.ok() ? 0 : Fail(status); }

int RunList(AttuneClient& client, const ListOptions& options, OutputFormat format) {
  v1::ListJobsRequest request;
  if (!options.state.empty()) {
    v1::JobState state;
    if (!v1::JobState_Parse(options.state, &state)) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(
          "--state: unknown state '", options.state,
          "'; expected one of QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, PAUSED")));
    }
    request.set_state(state);
  }
  request.set_page_size(options.page_size);
  for (const std::string& label : options.labels) *request.add_label_selector() = label;
  do {
    absl::StatusOr<v1::ListJobsResponse> page = client.ListJobs(request);
    if (!page.ok()) return Fail(page.status());
    for (const v1::Job& job : page->jobs()) {
      std::cout << (format == OutputFormat::kJson ? ToJson(job) : JobListLine(job)) << "\n";
    }
    request.set_page_token(page->next_page_token());
  } while (!request.page_token().empty());
  std::cout << std::flush;
  return 0;
}

int RunGet(AttuneClient& client, const std::string& job_id, OutputFormat format) {
  absl::StatusOr<v1::Job> job = client.GetJob(job_id);
  if (!job.ok()) return Fail(job.status());
  std::cout << (format == OutputFormat::kJson ? ToJson(*job) + "\n" : JobSummary(*job))
            << std::flush;
  return 0;
}

int RunJobChange(const absl::StatusOr<v1::Job>& job, OutputFormat format) {
  if (!job.ok()) return Fail(job.status());
  std::cout << (format == OutputFormat::kJson ? ToJson(*job)
                                              : job->id() + " " + StateName(job->state()))
            << std::endl;
  return 0;
}

namespace {

// Estimates the time left from the steps seen since the first step event of this watch.
class EtaClock {
 public:
  // Seconds until `step` reaches `total`; -1 until two steps have been seen.
  double SecondsLeft(int64_t step, int64_t total) {
    auto now = std::chrono::steady_clock::now();
    if (first_step_ < 0) {
      first_step_ = step;
      start_ = now;
    }
    if (step <= first_step_) return -1;
    double elapsed = std::chrono::duration<double>(now - start_).count();
    return elapsed / (step - first_step_) * (total - step);
  }

 private:
  int64_t first_step_ = -1;
  std::chrono::steady_clock::time_point start_;
};

// Prints one event of `attune watch`: JSON per line with --output json; on a terminal step
// events move the progress bar and other events print a line below it; otherwise one line each.
void PrintWatchEvent(const v1::JobEvent& event, OutputFormat format, ProgressBar* bar,
                     EtaClock* eta) {
  if (format == OutputFormat::kJson) {
    std::cout << ToJson(event) << std::endl;
    return;
  }
  if (event.has_step() && bar->output() == BarOutput::kTerminal) {
    const v1::JobEvent::StepMetrics& step = event.step();
    bar->Update(step.step(), step.total_steps(),
                StepProgressText(step, eta->SecondsLeft(step.step(), step.total_steps())));
    return;
  }
  bar->Finish();
  std::cout << EventLine(event) << std::endl;
}

}  // namespace

int RunWatch(AttuneClient& client, const WatchOptions& options, OutputFormat format) {
  const bool tty = format == OutputFormat::kText && isatty(STDOUT_FILENO);
  ProgressBar bar(&std::cout, tty ? BarOutput::kTerminal : BarOutput::kPlain);
  EtaClock eta;
  v1::JobState final_state = v1::JOB_STATE_UNSPECIFIED;
  absl::Status status =
      client.WatchJob(options.job_id, options.from_sequence, [&](const v1::JobEvent& event) {
        if (event.has_state_change()) final_state = event.state_change().state();
        PrintWatchEvent(event, format, &bar, &eta);
        return true;
      });
  bar.Finish();
  if (!status.ok()) return Fail(status);
  if (final_state == v1::JOB_STATE_UNSPECIFIED || final_state == v1::QUEUED ||
      final_state == v1::RUNNING) {
    // The stream ended without a terminal event in this window: ask for the state.
    absl::StatusOr<v1::Job> job = client.GetJob(options.job_id);
    if (!job.ok()) return Fail(job.status());
    final_state = job->state();
  }
  return final_state == v1::SUCCEEDED ? 0 : 1;
}

namespace {

void PrintDownloadResult(const DownloadOptions& options, const DownloadResult& result,
                         OutputFormat format) {
  const std::string dir = std::filesystem::absolute(options.dir).string();
  if (format == OutputFormat::kJson) {
    std::cout << absl::StrFormat(
                     R"({"jobId":"%s","step":"%d","dir":"%s","bytes":"%d","sha256":"%s"})",
                     options.job_id, result.step, dir, result.bytes, result.sha256)
              << std::endl;
    return;
  }
  std::cout << "downloaded step " << result.step << " of " << options.job_id << " to " << dir
            << " (" << result.file_count << " files, " << HumanBytes(result.bytes) << ", sha256 "
            << result.sha256 << ")" << std::endl;
}

}  // namespace

int RunDownload(AttuneClient& client, DownloadOptions options, OutputFormat format) {
  const bool tty = format == OutputFormat::kText && isatty(STDERR_FILENO);
  ProgressBar bar(&std::cerr, tty ? BarOutput::kTerminal : BarOutput::kPlain);
  options.on_progress = [&bar](int64_t done, int64_t total) {
    bar.Update(done, total, absl::StrCat(HumanBytes(done), " / ", HumanBytes(total)));
  };
  absl::StatusOr<DownloadResult> result = DownloadAdapterTo(client, options);
  bar.Finish();
  if (!result.ok()) return Fail(result.status());
  PrintDownloadResult(options, *result, format);
  return 0;
}

int RunHealth(AttuneClient& client, const std::string& service) {
  absl::StatusOr<std::string> state = client.CheckHealth(service);
  if (!state.ok()) return Fail(state.status());
  std::cout << *state << std::endl;
  return *state == "SERVING" ? 0 : 1;
}

}  // namespace attune::client
