// End-to-end tests with real (tiny) training: the real attuned, the real attune CLI and the
// example model from attune-make-example. Submit -> watch -> SUCCEEDED -> download; kill -9 and
// SIGTERM with queued and running jobs, then a restart; one slot vs two slots per device.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "client/attune_client.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/attuned_process.h"
#include "tests/job_waits.h"

namespace attune::testing {
namespace {

namespace fs = std::filesystem;
using google::protobuf::util::TimeUtil;

class JobsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    example_ = dir_.path() + "/example";
    fs::create_directories(example_);
    ASSERT_TRUE(MakeExample(example_));
  }

  std::vector<std::string> SubmitArgs(const std::vector<std::string>& extra) const {
    return ExampleSubmitArgs(example_, extra);
  }

  std::string Submit(const AttunedProcess& server, const std::vector<std::string>& extra) {
    CliResult r = RunCli(server.address(), SubmitArgs(extra));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string id = r.out.substr(0, r.out.find('\n'));
    EXPECT_FALSE(id.empty());
    return id;
  }

  TempDir dir_;
  std::string example_;
};

TEST_F(JobsTest, SubmitWatchSucceedDownload) {
  AttunedProcess server(dir_.path() + "/data", {"--data-roots", example_});
  ASSERT_FALSE(server.address().empty());
  std::string id = Submit(server, {"--name", "example", "--request-id", "e2e-1"});
  // A retry with the same request id is the same job.
  EXPECT_EQ(Submit(server, {"--name", "example", "--request-id", "e2e-1"}), id);

  CliResult watch = RunCli(server.address(), {"watch", id}, 120);
  EXPECT_EQ(watch.exit_code, 0) << watch.out << watch.err << server.Log();
  EXPECT_NE(watch.out.find("state RUNNING"), std::string::npos) << watch.out;
  EXPECT_NE(watch.out.find("state SUCCEEDED"), std::string::npos) << watch.out;

  // JSON: one proto3 JSON event per line, sequences 1, 2, 3, ... ending with SUCCEEDED.
  CliResult json = RunCli(server.address(), {"--output", "json", "watch", id});
  EXPECT_EQ(json.exit_code, 0);
  int64_t expected = 1;
  v1::JobEvent last;
  for (absl::string_view line : absl::StrSplit(json.out, '\n', absl::SkipEmpty())) {
    v1::JobEvent event;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(std::string(line), &event).ok())
        << line;
    EXPECT_EQ(event.sequence(), expected++);
    last = event;
  }
  EXPECT_EQ(last.state_change().state(), v1::SUCCEEDED);
  // Reconnecting from a sequence continues without gaps or repeats.
  CliResult tail = RunCli(server.address(), {"--output", "json", "watch", id, "--from-sequence",
                                             absl::StrCat(expected - 3)});
  EXPECT_EQ(tail.exit_code, 0);
  std::vector<std::string> tail_lines = absl::StrSplit(tail.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(tail_lines.size(), 2u);
  v1::JobEvent first_tail;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(tail_lines[0], &first_tail).ok());
  EXPECT_EQ(first_tail.sequence(), expected - 2);

  // The job reports its sizes; the adapter is at most 5% of the base model.
  client::AttuneClient client(server.address());
  auto job = client.GetJob(id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::SUCCEEDED);
  EXPECT_GT(job->adapter_bytes(), 0);
  EXPECT_GT(job->base_model_bytes(), 0);
  EXPECT_LE(job->adapter_bytes() * 20, job->base_model_bytes())
      << "the example adapter must be at most 5% of its base model";
  EXPECT_GT(job->trainable_parameters(), 0);
  EXPECT_LT(job->trainable_parameters(), job->total_parameters());
  CliResult get = RunCli(server.address(), {"get", id});
  EXPECT_EQ(get.exit_code, 0);
  EXPECT_NE(get.out.find("SUCCEEDED"), std::string::npos) << get.out;
  EXPECT_NE(get.out.find("storage   adapter "), std::string::npos) << get.out;
  EXPECT_NE(get.out.find("base model"), std::string::npos) << get.out;

  // Cancelling a finished job is a precondition failure.
  CliResult cancel = RunCli(server.address(), {"cancel", id});
  EXPECT_EQ(cancel.exit_code, 1);
  EXPECT_NE(cancel.err.find("FAILED_PRECONDITION"), std::string::npos) << cancel.err;

  // Download: a ready PEFT directory, checksum verified, no partial left behind.
  const std::string out = dir_.path() + "/adapter";
  CliResult download = RunCli(server.address(), {"download", id, "-o", out});
  ASSERT_EQ(download.exit_code, 0) << download.err;
  EXPECT_TRUE(fs::is_regular_file(out + "/adapter_config.json"));
  EXPECT_TRUE(fs::is_regular_file(out + "/adapter_model.safetensors"));
  EXPECT_FALSE(fs::exists(out + "/resume"));
  EXPECT_FALSE(fs::exists(out + ".partial"));
  nlohmann::json config = nlohmann::json::parse(ReadFile(out + "/adapter_config.json"));
  EXPECT_EQ(config["peft_type"], "LORA");
  // A second download into the same, non-empty directory is refused.
  EXPECT_EQ(RunCli(server.address(), {"download", id, "-o", out}).exit_code, 1);
}

// Builds "<dest>.partial" as a broken download of `complete` would leave it: the files up to
// `cut` bytes of the archive, and the marker. Returns the archive size.
int64_t MakePartialDownload(const std::string& complete, const std::string& dest,
                            const std::string& job_id, int64_t step, int64_t cut) {
  const std::string partial = dest + ".partial";
  fs::create_directories(partial);
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(complete)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  nlohmann::json marker = {{"job_id", job_id}, {"step", step}};
  marker["files"] = nlohmann::json::array();
  int64_t offset = 0;
  for (const std::string& name : names) {
    std::string bytes = ReadFile(complete + "/" + name);
    int64_t size = static_cast<int64_t>(bytes.size());
    marker["files"].push_back({{"path", name}, {"size", size}, {"offset", offset}});
    int64_t keep = std::clamp<int64_t>(cut - offset, 0, size);
    if (keep > 0) std::ofstream(partial + "/" + name, std::ios::binary) << bytes.substr(0, keep);
    offset += size;
  }
  marker["total"] = offset;
  std::ofstream(partial + "/.attune-download.json") << marker.dump();
  return offset;
}

TEST_F(JobsTest, DownloadResumesAndDetectsCorruption) {
  AttunedProcess server(dir_.path() + "/data", {"--data-roots", example_});
  std::string id = Submit(server, {"--max-steps", "4"});
  ASSERT_EQ(RunCli(server.address(), {"watch", id}, 120).exit_code, 0);
  const std::string full = dir_.path() + "/full";
  ASSERT_EQ(RunCli(server.address(), {"download", id, "-o", full}).exit_code, 0);
  client::AttuneClient client(server.address());
  int64_t step = 0;
  ASSERT_TRUE(client
                  .DownloadAdapter(v1::DownloadAdapterRequest(),
                                   [](const v1::AdapterChunk&) { return absl::OkStatus(); })
                  .code() == absl::StatusCode::kInvalidArgument);  // job_id required
  v1::DownloadAdapterRequest request;
  request.set_job_id(id);
  request.set_offset(10);
  int64_t data_bytes = 0, total = 0;
  ASSERT_TRUE(client
                  .DownloadAdapter(request,
                                   [&](const v1::AdapterChunk& chunk) {
                                     if (chunk.has_info()) {
                                       step = chunk.info().step();
                                       total = chunk.info().total_size();
                                     }
                                     data_bytes += static_cast<int64_t>(chunk.data().size());
                                     return absl::OkStatus();
                                   })
                  .ok());
  EXPECT_EQ(data_bytes, total - 10);  // only the bytes from the offset on

  // Resume: half the archive already on disk; the CLI fetches the rest and verifies.
  const std::string resumed = dir_.path() + "/resumed";
  int64_t size = MakePartialDownload(full, resumed, id, step, total / 2);
  EXPECT_EQ(size, total);
  CliResult r = RunCli(server.address(), {"download", id, "-o", resumed});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFile(resumed + "/adapter_model.safetensors"),
            ReadFile(full + "/adapter_model.safetensors"));

  // Corruption: a flipped byte in the part already on disk fails the checksum.
  const std::string corrupt = dir_.path() + "/corrupt";
  MakePartialDownload(full, corrupt, id, step, total - 1);
  {
    std::fstream f(corrupt + ".partial/adapter_config.json", std::ios::in | std::ios::out);
    f.seekp(0);
    f.put('#');
  }
  CliResult bad = RunCli(server.address(), {"download", id, "-o", corrupt});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("DATA_LOSS: download: checksum mismatch"), std::string::npos) << bad.err;
  EXPECT_FALSE(fs::exists(corrupt));
  EXPECT_FALSE(fs::exists(corrupt + ".partial"));
}

TEST_F(JobsTest, KillNineWithQueuedAndRunningJobsThenRestart) {
  const std::string data = dir_.path() + "/data";
  std::string running_id, queued_id;
  {
    AttunedProcess server(data, {"--data-roots", example_, "--slots-per-device", "1"});
    running_id = Submit(server, {"--max-steps", "100000", "--checkpoint-every", "2"});
    queued_id = Submit(server, {"--max-steps", "100000"});
    client::AttuneClient client(server.address());
    WaitForJob(
        client, running_id,
        [](const v1::Job& j) { return j.state() == v1::RUNNING && j.current_step() >= 3; }, 120);
    EXPECT_EQ(client.GetJob(queued_id)->state(), v1::QUEUED);
    EXPECT_EQ(server.StopWith(SIGKILL, 10), 128 + SIGKILL);
  }
  AttunedProcess server(data, {"--data-roots", example_, "--slots-per-device", "1"});
  ASSERT_FALSE(server.address().empty());
  client::AttuneClient client(server.address());
  v1::ListJobsRequest all;
  auto page = client.ListJobs(all);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->jobs_size(), 2);
  // The interrupted job was re-queued (an event says so) and runs again; nothing else runs.
  bool saw_requeue = false;
  ASSERT_TRUE(WatchJobFor(server.address(), running_id, 0, 60, [&](const v1::JobEvent& e) {
                if (e.has_state_change() && e.state_change().state() == v1::QUEUED &&
                    e.sequence() > 2) {
                  saw_requeue = true;
                }
                return !saw_requeue;
              }).ok());
  EXPECT_TRUE(saw_requeue);
  // It really runs: its step count moves past what the killed process recorded.
  const int64_t step_at_restart = page->jobs(0).id() == running_id ? page->jobs(0).current_step()
                                                                   : page->jobs(1).current_step();
  v1::Job resumed = WaitForJob(
      client, running_id,
      [&](const v1::Job& j) {
        return j.state() == v1::RUNNING && j.current_step() > step_at_restart;
      },
      120);
  EXPECT_EQ(resumed.state(), v1::RUNNING) << resumed.error();
  EXPECT_EQ(client.GetJob(queued_id)->state(), v1::QUEUED);
  // Both cancel cleanly.
  ASSERT_TRUE(client.CancelJob(queued_id).ok());
  ASSERT_TRUE(client.CancelJob(running_id).ok());
  v1::Job ended = WaitForJob(client, running_id, IsTerminal, 60);
  EXPECT_EQ(ended.state(), v1::CANCELLED) << ended.error();
  EXPECT_EQ(client.GetJob(queued_id)->state(), v1::CANCELLED);
}

// The steps of the checkpoint directories under `dir` ("step-00000012" -> 12), ascending.
std::vector<int64_t> CheckpointSteps(const std::string& dir) {
  std::vector<int64_t> steps;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() == 13 && name.rfind("step-", 0) == 0)
      steps.push_back(std::stoll(name.substr(5)));
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

// The index of the first event at or after `from` that satisfies `match`; events.size() if none.
size_t FindEvent(const std::vector<v1::JobEvent>& events, size_t from,
                 const std::function<bool(const v1::JobEvent&)>& match) {
  while (from < events.size() && !match(events[from])) ++from;
  return from;
}

TEST_F(JobsTest, SigtermCheckpointsRequeuesAndTheRestartResumes) {
  const std::string data = dir_.path() + "/data";
  constexpr int64_t kSteps = 120;
  std::string id;
  int64_t seen_step = 0;
  {
    AttunedProcess server(data, {"--data-roots", example_});
    ASSERT_FALSE(server.address().empty());
    id = Submit(server, {"--max-steps", absl::StrCat(kSteps)});
    client::AttuneClient client(server.address());
    v1::Job running = WaitForJob(
        client, id,
        [](const v1::Job& j) { return j.state() == v1::RUNNING && j.current_step() >= 3; }, 60);
    ASSERT_EQ(running.state(), v1::RUNNING);
    seen_step = running.current_step();
    ASSERT_EQ(server.StopWith(SIGTERM, 30), 0) << server.Log();
  }
  // The job checkpointed where it stopped: the only checkpoint (checkpoint_every is 0), at or
  // after the step seen running, before the end.
  const std::string checkpoints = absl::StrCat(data, "/jobs/", id, "/checkpoints");
  const std::vector<int64_t> steps = CheckpointSteps(checkpoints);
  ASSERT_EQ(steps.size(), 1u) << checkpoints;
  const int64_t stop_step = steps[0];
  EXPECT_GE(stop_step, seen_step);
  ASSERT_LT(stop_step, kSteps) << "the job finished before SIGTERM";
  const std::string step_dir = absl::StrFormat("%s/step-%08d", checkpoints, stop_step);
  EXPECT_TRUE(fs::is_regular_file(step_dir + "/adapter_model.safetensors"));
  EXPECT_TRUE(fs::is_regular_file(step_dir + "/resume/state.json"));

  AttunedProcess server(data, {"--data-roots", example_});
  ASSERT_FALSE(server.address().empty());
  std::vector<v1::JobEvent> events;
  ASSERT_TRUE(WatchJobFor(server.address(), id, 0, 120, [&](const v1::JobEvent& e) {
                events.push_back(e);
                return true;
              }).ok());
  auto state_is = [](v1::JobState state) {
    return [state](const v1::JobEvent& e) {
      return e.has_state_change() && e.state_change().state() == state;
    };
  };
  // Stored across the restart: RUNNING, steps up to stop_step, the checkpoint at stop_step,
  // then QUEUED because of the shutdown (and no "server restarted" requeue: it was not RUNNING).
  const size_t first_run = FindEvent(events, 0, state_is(v1::RUNNING));
  ASSERT_LT(first_run, events.size());
  const size_t requeued = FindEvent(events, first_run, state_is(v1::QUEUED));
  ASSERT_LT(requeued, events.size());
  EXPECT_EQ(events[requeued].state_change().message(),
            "server shutting down; the job will resume from its last checkpoint");
  EXPECT_EQ(FindEvent(events, requeued + 1, state_is(v1::QUEUED)), events.size());
  int64_t last_step_before = 0;
  bool checkpoint_event = false;
  for (size_t i = first_run; i < requeued; ++i) {
    if (events[i].has_step()) last_step_before = events[i].step().step();
    checkpoint_event |= events[i].has_checkpoint() && events[i].checkpoint().step() == stop_step;
  }
  EXPECT_EQ(last_step_before, stop_step);
  EXPECT_TRUE(checkpoint_event) << "no checkpoint event at step " << stop_step;
  // The restart runs it again from that checkpoint: the next step is stop_step + 1.
  const size_t rerun = FindEvent(events, requeued + 1, state_is(v1::RUNNING));
  ASSERT_LT(rerun, events.size());
  const size_t resumed = FindEvent(events, rerun, [](const v1::JobEvent& e) {
    return e.has_state_change() && e.state_change().message().rfind("resumed", 0) == 0;
  });
  ASSERT_LT(resumed, events.size());
  EXPECT_EQ(events[resumed].state_change().message(),
            absl::StrCat("resumed from the checkpoint at step ", stop_step));
  const size_t next_step =
      FindEvent(events, requeued + 1, [](const v1::JobEvent& e) { return e.has_step(); });
  ASSERT_LT(next_step, events.size());
  EXPECT_EQ(events[next_step].step().step(), stop_step + 1);
  ASSERT_TRUE(events.back().has_state_change());
  EXPECT_EQ(events.back().state_change().state(), v1::SUCCEEDED);
  client::AttuneClient client(server.address());
  auto job = client.GetJob(id);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::SUCCEEDED) << job->error();
  EXPECT_EQ(job->current_step(), kSteps);
}

// Runs two short jobs on a server with `slots` slots; returns them when both succeeded.
std::pair<v1::Job, v1::Job> RunTwo(
    const std::string& data, const std::string& example, int slots,
    const std::function<std::string(const AttunedProcess&)>& submit) {
  AttunedProcess server(data, {"--data-roots", example, "--slots-per-device", absl::StrCat(slots)});
  std::string a = submit(server);
  std::string b = submit(server);
  client::AttuneClient client(server.address());
  v1::Job job_a = WaitForJob(client, a, IsTerminal, 60);
  v1::Job job_b = WaitForJob(client, b, IsTerminal, 60);
  EXPECT_EQ(job_a.state(), v1::SUCCEEDED) << job_a.error();
  EXPECT_EQ(job_b.state(), v1::SUCCEEDED) << job_b.error();
  return {job_a, job_b};
}

TEST_F(JobsTest, OneSlotRunsJobsInTurnTwoSlotsSideBySide) {
  auto submit = [this](const AttunedProcess& server) {
    return Submit(server, {"--max-steps", "6"});
  };
  auto [a1, b1] = RunTwo(dir_.path() + "/one", example_, 1, submit);
  EXPECT_GE(TimeUtil::TimestampToMicroseconds(b1.start_time()),
            TimeUtil::TimestampToMicroseconds(a1.finish_time()));
  auto [a2, b2] = RunTwo(dir_.path() + "/two", example_, 2, submit);
  EXPECT_LT(TimeUtil::TimestampToMicroseconds(b2.start_time()),
            TimeUtil::TimestampToMicroseconds(a2.finish_time()));
  EXPECT_LT(TimeUtil::TimestampToMicroseconds(a2.start_time()),
            TimeUtil::TimestampToMicroseconds(b2.finish_time()));
}

}  // namespace
}  // namespace attune::testing
