// The hostile-input suite (issue 11's acceptance): every scalar field of JobSpec gets its
// boundary values (0, negative, NaN, +-Inf, the type's extremes) through the real attuned on a
// free port. Each CreateJob is either refused with INVALID_ARGUMENT whose message starts with
// the field's name, or accepted: then the job (one step of the example model on 16 rows) runs, or
// is cancelled at once when it asks for many steps, and must end SUCCEEDED or CANCELLED (never
// FAILED: an accepted value the engine cannot take is a bug), and the server
// must go on listing every job, and list the same jobs in the same states after a restart on the
// same data directory.
#include <signal.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/attune_client.h"
#include "gtest/gtest.h"
#include "tests/attuned_process.h"
#include "tests/job_waits.h"

namespace attune::testing {
namespace {

namespace fs = std::filesystem;

using Setter = std::function<void(v1::JobSpec*)>;

// An accepted job of at most this many steps runs to its end (so that a value the engine cannot
// take shows as FAILED); a longer one is cancelled at once.
constexpr int64_t kStepsToRun = 4;

// One hostile request: the field it names, how the value reads, and how to set it.
struct Case {
  std::string field;
  std::string value;
  Setter set;
};

template <typename T>
std::vector<T> IntegerValues() {
  std::vector<T> values = {T{0}, std::numeric_limits<T>::max()};
  if (std::numeric_limits<T>::is_signed) {
    values.push_back(T(-1));
    values.push_back(std::numeric_limits<T>::min());
  }
  return values;
}

std::vector<double> DoubleValues() {
  const double inf = std::numeric_limits<double>::infinity();
  return {0.0,
          -0.0,
          -1.0,
          std::nan(""),
          inf,
          -inf,
          std::numeric_limits<double>::max(),
          -std::numeric_limits<double>::max(),
          std::numeric_limits<double>::denorm_min()};
}

template <typename T>
void AddIntegers(const std::string& field, std::function<void(v1::JobSpec*, T)> set,
                 std::vector<Case>* cases) {
  for (T v : IntegerValues<T>()) {
    cases->push_back({field, absl::StrCat(v), [set, v](v1::JobSpec* s) { set(s, v); }});
  }
}

void AddDoubles(const std::string& field, std::function<void(v1::JobSpec*, double)> set,
                std::vector<Case>* cases) {
  for (double v : DoubleValues()) {
    cases->push_back({field, absl::StrFormat("%g", v), [set, v](v1::JobSpec* s) { set(s, v); }});
  }
}

// Enums are open in proto3: a client can send any int32.
void AddEnum(const std::string& field, std::function<void(v1::JobSpec*, int)> set,
             std::vector<Case>* cases) {
  for (int v : {0, -1, 99, std::numeric_limits<int>::max(), std::numeric_limits<int>::min()}) {
    cases->push_back({field, absl::StrCat(v), [set, v](v1::JobSpec* s) { set(s, v); }});
  }
}

std::vector<Case> AllCases() {
  std::vector<Case> c;
  AddEnum(
      "task", [](v1::JobSpec* s, int v) { s->set_task(static_cast<v1::Task>(v)); }, &c);
  AddEnum(
      "method", [](v1::JobSpec* s, int v) { s->set_method(static_cast<v1::Method>(v)); }, &c);
  AddEnum(
      "schedule", [](v1::JobSpec* s, int v) { s->set_schedule(static_cast<v1::Schedule>(v)); }, &c);
  AddIntegers<int32_t>(
      "lora.rank", [](v1::JobSpec* s, int32_t v) { s->mutable_lora()->set_rank(v); }, &c);
  AddDoubles(
      "lora.alpha", [](v1::JobSpec* s, double v) { s->mutable_lora()->set_alpha(v); }, &c);
  AddDoubles(
      "lora.dropout", [](v1::JobSpec* s, double v) { s->mutable_lora()->set_dropout(v); }, &c);
  c.push_back(
      {"lora.use_rslora", "true", [](v1::JobSpec* s) { s->mutable_lora()->set_use_rslora(true); }});
  AddDoubles(
      "learning_rate", [](v1::JobSpec* s, double v) { s->set_learning_rate(v); }, &c);
  AddDoubles(
      "lr_ratios", [](v1::JobSpec* s, double v) { (*s->mutable_lr_ratios())["v"] = v; }, &c);
  AddDoubles(
      "loraplus_ratio", [](v1::JobSpec* s, double v) { s->set_loraplus_ratio(v); }, &c);
  AddDoubles(
      "weight_decay", [](v1::JobSpec* s, double v) { s->set_weight_decay(v); }, &c);
  AddDoubles(
      "max_grad_norm", [](v1::JobSpec* s, double v) { s->set_max_grad_norm(v); }, &c);
  AddIntegers<int32_t>(
      "epochs", [](v1::JobSpec* s, int32_t v) { s->set_epochs(v); }, &c);
  AddIntegers<int64_t>(
      "max_steps", [](v1::JobSpec* s, int64_t v) { s->set_max_steps(v); }, &c);
  AddIntegers<int32_t>(
      "batch_size", [](v1::JobSpec* s, int32_t v) { s->set_batch_size(v); }, &c);
  AddIntegers<int32_t>(
      "max_seq_len", [](v1::JobSpec* s, int32_t v) { s->set_max_seq_len(v); }, &c);
  AddIntegers<int64_t>(
      "warmup_steps", [](v1::JobSpec* s, int64_t v) { s->set_warmup_steps(v); }, &c);
  AddIntegers<uint64_t>(
      "seed", [](v1::JobSpec* s, uint64_t v) { s->set_seed(v); }, &c);
  AddIntegers<int64_t>(
      "eval_every", [](v1::JobSpec* s, int64_t v) { s->set_eval_every(v); }, &c);
  AddIntegers<int64_t>(
      "checkpoint_every", [](v1::JobSpec* s, int64_t v) { s->set_checkpoint_every(v); }, &c);
  AddIntegers<int32_t>(
      "keep_checkpoints", [](v1::JobSpec* s, int32_t v) { s->set_keep_checkpoints(v); }, &c);
  AddIntegers<int32_t>(
      "gpus", [](v1::JobSpec* s, int32_t v) { s->set_gpus(v); }, &c);
  AddIntegers<int32_t>(
      "ranks", [](v1::JobSpec* s, int32_t v) { s->set_ranks(v); }, &c);
  AddIntegers<int32_t>(
      "priority", [](v1::JobSpec* s, int32_t v) { s->set_priority(v); }, &c);
  return c;
}

// Every job the server lists, id -> state, following the page tokens (at most 20 pages).
std::map<std::string, v1::JobState> ListAll(client::AttuneClient& client) {
  std::map<std::string, v1::JobState> jobs;
  v1::ListJobsRequest request;
  for (int pages = 0; pages < 20; ++pages) {
    absl::StatusOr<v1::ListJobsResponse> page = client.ListJobs(request);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) break;
    for (const v1::Job& job : page->jobs()) jobs[job.id()] = job.state();
    if (page->next_page_token().empty()) break;
    request.set_page_token(page->next_page_token());
  }
  return jobs;
}

TEST(HostileInputTest, EveryScalarFieldAtItsBoundaries) {
  TempDir dir;
  const std::string example = dir.path() + "/root/example";
  fs::create_directories(example);
  ASSERT_TRUE(MakeExample(example));
  {
    std::ifstream in(example + "/train.jsonl");
    std::ofstream out(example + "/small.jsonl");
    std::string line;
    for (int i = 0; i < 16 && std::getline(in, line); ++i) out << line << "\n";
  }
  const std::string data_dir = dir.path() + "/data";
  const std::vector<std::string> args = {"--data-roots", dir.path() + "/root"};
  auto server = std::make_unique<AttunedProcess>(data_dir, args);
  ASSERT_FALSE(server->address().empty());
  client::AttuneClient client(server->address());
  client.set_timeout(std::chrono::seconds(30));

  std::vector<std::string> accepted;
  int refused = 0;
  for (const Case& c : AllCases()) {
    SCOPED_TRACE(c.field + " = " + c.value);
    v1::CreateJobRequest request;
    v1::JobSpec* spec = request.mutable_spec();
    spec->set_model(example + "/model");
    spec->set_train(example + "/small.jsonl");
    spec->set_task(v1::TASK_SEQUENCE_CLASSIFICATION);
    spec->set_max_steps(1);
    spec->set_batch_size(4);
    c.set(spec);
    absl::StatusOr<v1::Job> job = client.CreateJob(request);
    if (!job.ok()) {
      ++refused;
      EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument) << job.status();
      const std::string message(job.status().message());
      EXPECT_EQ(message.rfind(c.field + ":", 0), 0u) << "does not name the field: " << message;
      continue;
    }
    accepted.push_back(job->id());
    if (job->spec().max_steps() <= kStepsToRun) continue;  // runs its steps
    absl::StatusOr<v1::Job> cancelled = client.CancelJob(job->id());
    if (!cancelled.ok()) {  // only a job that has already ended may refuse
      EXPECT_EQ(cancelled.status().code(), absl::StatusCode::kFailedPrecondition)
          << cancelled.status();
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_GT(accepted.size(), 0u);
  for (const std::string& id : accepted) {
    v1::Job job = WaitForJob(client, id, IsTerminal, /*timeout_s=*/60);
    EXPECT_TRUE(job.state() == v1::CANCELLED || job.state() == v1::SUCCEEDED)
        << id << " (" << job.spec().ShortDebugString() << ") ended "
        << v1::JobState_Name(job.state()) << ": " << job.error();
  }

  const std::map<std::string, v1::JobState> before = ListAll(client);
  EXPECT_EQ(before.size(), accepted.size());
  ASSERT_EQ(server->StopWith(SIGTERM, 30), 0) << server->Log();
  server = std::make_unique<AttunedProcess>(data_dir, args);
  ASSERT_FALSE(server->address().empty()) << server->Log();
  client::AttuneClient again(server->address());
  again.set_timeout(std::chrono::seconds(30));
  EXPECT_EQ(ListAll(again), before);
}

// A job that FAILED at run time (here its training file was broken after CreateJob, while it
// waited behind another job) is terminal: a restart on the same data directory leaves it FAILED
// with the same error instead of requeueing it.
TEST(HostileInputTest, FailedJobIsNotRequeuedByARestart) {
  TempDir dir;
  const std::string example = dir.path() + "/root/example";
  fs::create_directories(example);
  ASSERT_TRUE(MakeExample(example));
  fs::copy_file(example + "/train.jsonl", example + "/doomed.jsonl");
  const std::string data_dir = dir.path() + "/data";
  const std::vector<std::string> args = {"--data-roots", dir.path() + "/root"};
  auto server = std::make_unique<AttunedProcess>(data_dir, args);
  ASSERT_FALSE(server->address().empty());
  client::AttuneClient client(server->address());
  client.set_timeout(std::chrono::seconds(30));
  v1::CreateJobRequest request;
  request.mutable_spec()->set_model(example + "/model");
  request.mutable_spec()->set_train(example + "/train.jsonl");
  request.mutable_spec()->set_task(v1::TASK_SEQUENCE_CLASSIFICATION);
  request.mutable_spec()->set_max_steps(100000);
  absl::StatusOr<v1::Job> blocker = client.CreateJob(request);  // holds the one CPU slot
  ASSERT_TRUE(blocker.ok()) << blocker.status();
  request.mutable_spec()->set_train(example + "/doomed.jsonl");
  request.mutable_spec()->set_max_steps(1);
  absl::StatusOr<v1::Job> doomed = client.CreateJob(request);
  ASSERT_TRUE(doomed.ok()) << doomed.status();
  std::ofstream(example + "/doomed.jsonl", std::ios::trunc) << "{\"text\": oops\n";
  ASSERT_TRUE(client.CancelJob(blocker->id()).ok());
  const v1::Job failed = WaitForJob(client, doomed->id(), IsTerminal, /*timeout_s=*/60);
  ASSERT_EQ(failed.state(), v1::FAILED) << failed.error();

  ASSERT_EQ(server->StopWith(SIGTERM, 30), 0) << server->Log();
  server = std::make_unique<AttunedProcess>(data_dir, args);
  ASSERT_FALSE(server->address().empty()) << server->Log();
  client::AttuneClient again(server->address());
  again.set_timeout(std::chrono::seconds(30));
  absl::StatusOr<v1::Job> after = again.GetJob(doomed->id());
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->state(), v1::FAILED);
  EXPECT_EQ(after->error(), failed.error());
}

}  // namespace
}  // namespace attune::testing
