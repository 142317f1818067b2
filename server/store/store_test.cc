#include "server/store/store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "server/store/store_test_fixture.h"

namespace attune::store {
namespace {

TEST_F(StoreTest, JobRoundTripsEveryField) {
  auto store = OpenStore();
  Job job = MakeJob("r1", 111);
  job.spec.name = "qv";
  ASSERT_TRUE(store->InsertJob(job).ok());
  Job stored = store->FindByRequestId("", "r1").value();
  EXPECT_EQ(stored.id.substr(0, 2), "j-");
  EXPECT_EQ(stored.id.size(), 18u);
  stored.state = JobState::kFailed;
  stored.started_us = 222;
  stored.finished_us = 333;
  stored.devices = {"cuda:0", "cuda:1"};
  stored.latest_step = StepMetrics{};
  stored.latest_step->train_loss = 0.25;
  stored.latest_step->learning_rates = {{"v.lora_A", 4e-4}};
  stored.latest_eval = EvalMetrics{};
  stored.latest_eval->step = 6;
  stored.latest_eval->loss = 0.5;
  stored.latest_eval->accuracy = 0.9;
  stored.latest_eval->f1 = 0.88;
  stored.latest_eval->mcc = 0.75;
  stored.trainable_parameters = 10;
  stored.total_parameters = 1000;
  stored.adapter_bytes = 40;
  stored.base_model_bytes = 4000;
  stored.error = "out of memory";
  stored.last_step = 7;
  stored.total_steps = 9;
  stored.output_dir = "/x/jobs/1";
  stored.crashed_attempts = 2;
  stored.shared_base_with = {"j-0000000000000002", "j-0000000000000003"};
  ASSERT_TRUE(store->UpdateJob(stored).ok());

  Job got = store->GetJob(stored.id).value();
  EXPECT_EQ(got.request_id, "r1");
  EXPECT_EQ(got.spec.name, "qv");
  EXPECT_EQ(got.spec.train.targets, (std::vector<std::string>{"q", "v"}));
  EXPECT_EQ(got.spec.train.lr_ratios.at("v"), 4.0);
  EXPECT_EQ(got.spec.priority, 3);
  EXPECT_EQ(got.state, JobState::kFailed);
  EXPECT_EQ(got.created_us, 111);
  EXPECT_EQ(got.started_us, 222);
  EXPECT_EQ(got.finished_us, 333);
  EXPECT_EQ(got.devices, stored.devices);
  EXPECT_EQ(got.shared_base_with, stored.shared_base_with);
  ASSERT_TRUE(got.latest_step.has_value());
  EXPECT_EQ(got.latest_step->step, 7);  // the job's last_step
  EXPECT_DOUBLE_EQ(got.latest_step->train_loss, 0.25);
  EXPECT_EQ(got.latest_step->learning_rates, stored.latest_step->learning_rates);
  ASSERT_TRUE(got.latest_eval.has_value());
  EXPECT_EQ(got.latest_eval->step, 6);
  EXPECT_DOUBLE_EQ(*got.latest_eval->accuracy, 0.9);
  EXPECT_DOUBLE_EQ(*got.latest_eval->f1, 0.88);
  EXPECT_DOUBLE_EQ(*got.latest_eval->mcc, 0.75);
  EXPECT_FALSE(got.latest_eval->pearson.has_value());
  EXPECT_EQ(got.trainable_parameters, 10);
  EXPECT_EQ(got.total_parameters, 1000);
  EXPECT_EQ(got.adapter_bytes, 40);
  EXPECT_EQ(got.base_model_bytes, 4000);
  EXPECT_EQ(got.error, "out of memory");
  EXPECT_EQ(got.last_step, 7);
  EXPECT_EQ(got.total_steps, 9);
  EXPECT_EQ(got.output_dir, "/x/jobs/1");
  EXPECT_EQ(got.crashed_attempts, 2);

  EXPECT_EQ(store->GetJob("j-nope").status().code(), absl::StatusCode::kNotFound);
  Job unknown = stored;
  unknown.id = "j-nope";
  EXPECT_EQ(store->UpdateJob(unknown).code(), absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, RequestIdIsUniquePerOwner) {
  auto store = OpenStore();
  Job first = store->InsertJob(MakeJob("same", 1)).value();
  absl::StatusOr<Job> again = store->InsertJob(MakeJob("same", 2));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(again.status().message().find(first.id), std::string::npos) << again.status();
  EXPECT_EQ(store->FindByRequestId("", "same").value().id, first.id);

  Job other_owner = MakeJob("same", 3);
  other_owner.owner = "tenant-b";
  EXPECT_TRUE(store->InsertJob(other_owner).ok());
  // Jobs without a request id never collide.
  EXPECT_TRUE(store->InsertJob(MakeJob("", 4)).ok());
  EXPECT_TRUE(store->InsertJob(MakeJob("", 5)).ok());
  EXPECT_EQ(store->FindByRequestId("", "other").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->ListJobs({}).value().jobs.size(), 4u);
}

TEST_F(StoreTest, ListJobsFiltersByEveryLabelAndPagesWithinTheFilter) {
  auto store = OpenStore();
  std::vector<std::string> sweep;
  for (int i = 0; i < 5; ++i) {
    Job job = MakeJob("", i);
    job.spec.labels = {{"attune.sweep", i < 3 ? "s-1" : "s-2"},
                       {"attune.grid.targets", i % 2 == 0 ? "q,v" : "q,k,v"}};
    const std::string id = store->InsertJob(job).value().id;
    if (i < 3) sweep.push_back(id);
  }
  store->InsertJob(MakeJob("", 9)).value();  // no labels at all

  ListJobsQuery query;
  query.labels = {{"attune.sweep", "s-1"}};
  query.page_size = 2;
  JobPage page1 = store->ListJobs(query).value();
  ASSERT_EQ(page1.jobs.size(), 2u);
  EXPECT_EQ(page1.jobs[0].id, sweep[2]);
  EXPECT_EQ(page1.jobs[1].id, sweep[1]);
  query.page_token = page1.next_page_token;
  JobPage page2 = store->ListJobs(query).value();
  ASSERT_EQ(page2.jobs.size(), 1u);
  EXPECT_EQ(page2.jobs[0].id, sweep[0]);
  EXPECT_EQ(page2.next_page_token, "");

  ListJobsQuery both;  // every pair must match
  both.labels = {{"attune.sweep", "s-1"}, {"attune.grid.targets", "q,k,v"}};
  JobPage one = store->ListJobs(both).value();
  ASSERT_EQ(one.jobs.size(), 1u);
  EXPECT_EQ(one.jobs[0].id, sweep[1]);
  ListJobsQuery prefix;  // values match exactly, not as a prefix
  prefix.labels = {{"attune.sweep", "s-"}};
  EXPECT_TRUE(store->ListJobs(prefix).value().jobs.empty());
}

TEST_F(StoreTest, ListJobsPagesNewestFirstWithStableTokens) {
  auto store = OpenStore();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    Job job = MakeJob("r" + std::to_string(i), i);
    if (i % 2 == 1) job.state = JobState::kRunning;
    ids.push_back(store->InsertJob(job).value().id);
  }
  ListJobsQuery query;
  query.page_size = 2;
  JobPage page1 = store->ListJobs(query).value();
  ASSERT_EQ(page1.jobs.size(), 2u);
  EXPECT_EQ(page1.jobs[0].id, ids[4]);
  EXPECT_EQ(page1.jobs[1].id, ids[3]);
  ASSERT_FALSE(page1.next_page_token.empty());

  store->InsertJob(MakeJob("late", 99)).value();  // does not shift later pages
  query.page_token = page1.next_page_token;
  JobPage page2 = store->ListJobs(query).value();
  ASSERT_EQ(page2.jobs.size(), 2u);
  EXPECT_EQ(page2.jobs[0].id, ids[2]);
  EXPECT_EQ(page2.jobs[1].id, ids[1]);
  query.page_token = page2.next_page_token;
  JobPage page3 = store->ListJobs(query).value();
  ASSERT_EQ(page3.jobs.size(), 1u);
  EXPECT_EQ(page3.jobs[0].id, ids[0]);
  EXPECT_EQ(page3.next_page_token, "");

  ListJobsQuery running;
  running.state = JobState::kRunning;
  JobPage filtered = store->ListJobs(running).value();
  ASSERT_EQ(filtered.jobs.size(), 2u);
  EXPECT_EQ(filtered.jobs[0].id, ids[3]);
  EXPECT_EQ(filtered.jobs[1].id, ids[1]);

  ListJobsQuery bad;
  bad.page_token = "garbage";
  EXPECT_EQ(store->ListJobs(bad).status().code(), absl::StatusCode::kInvalidArgument);

  auto counts = store->CountJobsByState().value();
  EXPECT_EQ(counts[JobState::kQueued], 4);
  EXPECT_EQ(counts[JobState::kRunning], 2);
  EXPECT_EQ(counts.count(JobState::kFailed), 0u);
}

TEST_F(StoreTest, EventSequencesAreGaplessPerJobAndEventsAfterIsExact) {
  auto store = OpenStore();
  std::string a = store->InsertJob(MakeJob("a", 1)).value().id;
  std::string b = store->InsertJob(MakeJob("b", 2)).value().id;
  EXPECT_EQ(store->AppendEvent(MakeEvent(a, EventType::kStateChanged, 0)).value(), 1);
  EXPECT_EQ(store->AppendEvent(MakeEvent(b, EventType::kStateChanged, 0)).value(), 1);
  std::vector<JobEvent> batch;
  for (int step = 1; step <= 5; ++step) batch.push_back(MakeEvent(a, EventType::kMetrics, step));
  batch.push_back(MakeEvent(b, EventType::kWarning, 0));
  std::vector<JobEvent> appended = store->AppendEvents(batch).value();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(appended[i].sequence, i + 2);
  EXPECT_EQ(appended[5].sequence, 2);

  // A batch with an unknown job writes nothing.
  std::vector<JobEvent> bad = {MakeEvent(a, EventType::kMetrics, 6),
                               MakeEvent("j-unknown", EventType::kMetrics, 1)};
  EXPECT_EQ(store->AppendEvents(bad).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->LastEventSequence(a).value(), 6);

  std::vector<JobEvent> after = store->EventsAfter(a, 3, 2).value();
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0].sequence, 4);
  EXPECT_EQ(after[0].type, EventType::kMetrics);
  EXPECT_EQ(after[0].step, 3);
  ASSERT_TRUE(after[0].step_metrics.has_value());
  EXPECT_DOUBLE_EQ(after[0].step_metrics->train_loss, 0.125);
  EXPECT_EQ(after[1].sequence, 5);
  EXPECT_EQ(store->EventsAfter(a, 0, 0).value().size(), 6u);
  EXPECT_TRUE(store->EventsAfter(a, 6, 10).value().empty());
  EXPECT_EQ(store->EventsAfter("j-unknown", 0, 10).status().code(), absl::StatusCode::kNotFound);

  Job job_a = store->GetJob(a).value();
  job_a.state = JobState::kSucceeded;
  JobEvent done = MakeEvent(a, EventType::kStateChanged, 5);
  done.state = JobState::kSucceeded;
  done.message = "finished";
  std::vector<JobEvent> written = store->UpdateJobAndAppendEvents(job_a, {done}).value();
  EXPECT_EQ(written[0].sequence, 7);
  EXPECT_EQ(store->GetJob(a).value().state, JobState::kSucceeded);
  EXPECT_EQ(store->EventsAfter(a, 6, 0).value()[0].message, "finished");
}

// Every typed detail of an event survives the store: step metrics (a skipped step's NaN loss
// included), an evaluation, a checkpoint's `best` flag and a state change's devices.
TEST_F(StoreTest, EventDetailsRoundTripTyped) {
  std::unique_ptr<Store> store = OpenStore();
  ASSERT_NE(store, nullptr);
  const std::string id = store->InsertJob(MakeJob("", 1)).value().id;
  JobEvent step = MakeEvent(id, EventType::kMetrics, 4);
  step.step_metrics->train_loss = std::nan("");
  step.step_metrics->skipped = true;
  step.step_metrics->total_steps = 40;
  step.step_metrics->tokens = 321;
  step.step_metrics->learning_rates = {{"v.lora_A", 4e-4}, {"head", 1e-4}};
  step.step_metrics->device_memory = DeviceMemory{10, 20, 30};
  JobEvent eval = MakeEvent(id, EventType::kEval, 4);
  eval.eval = EvalMetrics{};
  eval.eval->step = 4;
  eval.eval->loss = 0.3;
  eval.eval->spearman = 0.8;
  eval.eval->examples = 50;
  JobEvent checkpoint = MakeEvent(id, EventType::kCheckpoint, 4);
  checkpoint.best = true;
  JobEvent running = MakeEvent(id, EventType::kStateChanged, 0);
  running.devices = {"cuda:0"};
  ASSERT_TRUE(store->AppendEvents({step, eval, checkpoint, running}).ok());

  std::vector<JobEvent> got = store->EventsAfter(id, 0, 0).value();
  ASSERT_EQ(got.size(), 4u);
  ASSERT_TRUE(got[0].step_metrics.has_value());
  EXPECT_TRUE(std::isnan(got[0].step_metrics->train_loss));
  EXPECT_TRUE(got[0].step_metrics->skipped);
  EXPECT_EQ(got[0].step_metrics->step, 4);
  EXPECT_EQ(got[0].step_metrics->total_steps, 40);
  EXPECT_EQ(got[0].step_metrics->tokens, 321);
  EXPECT_EQ(got[0].step_metrics->learning_rates, step.step_metrics->learning_rates);
  ASSERT_TRUE(got[0].step_metrics->device_memory.has_value());
  EXPECT_EQ(got[0].step_metrics->device_memory->peak_allocated_bytes, 30);
  EXPECT_FALSE(got[0].eval.has_value());
  ASSERT_TRUE(got[1].eval.has_value());
  EXPECT_DOUBLE_EQ(*got[1].eval->spearman, 0.8);
  EXPECT_FALSE(got[1].eval->accuracy.has_value());
  EXPECT_FALSE(got[1].eval->mcc.has_value());
  EXPECT_EQ(got[1].eval->examples, 50);
  EXPECT_TRUE(got[2].best);
  EXPECT_EQ(got[3].devices, (std::vector<std::string>{"cuda:0"}));
}

TEST_F(StoreTest, ConcurrentAppendsStayGapless) {
  auto store = OpenStore();
  std::string id = store->InsertJob(MakeJob("a", 1)).value().id;
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 50; ++i) {
        ASSERT_TRUE(store->AppendEvent(MakeEvent(id, EventType::kMetrics, w * 100 + i)).ok());
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  std::vector<JobEvent> events = store->EventsAfter(id, 0, 0).value();
  ASSERT_EQ(events.size(), 200u);
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].sequence, static_cast<int64_t>(i + 1));
  }
}

TEST_F(StoreTest, CheckpointsAreRecordedListedAndDeleted) {
  auto store = OpenStore();
  std::string id = store->InsertJob(MakeJob("a", 1)).value().id;
  CheckpointRecord record{id, 20, "/ck/20", 1234, "abc", 5, 0.75};
  ASSERT_TRUE(store->InsertCheckpoint(record).ok());
  record.step = 10;
  record.dir = "/ck/10";
  record.eval_metric.reset();
  ASSERT_TRUE(store->InsertCheckpoint(record).ok());
  std::vector<CheckpointRecord> list = store->ListCheckpoints(id).value();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].step, 10);
  EXPECT_FALSE(list[0].eval_metric.has_value());
  EXPECT_EQ(list[1].dir, "/ck/20");
  EXPECT_EQ(list[1].bytes, 1234);
  EXPECT_EQ(list[1].sha256, "abc");
  EXPECT_DOUBLE_EQ(*list[1].eval_metric, 0.75);

  EXPECT_TRUE(store->DeleteCheckpoint(id, 10).ok());
  EXPECT_EQ(store->DeleteCheckpoint(id, 10).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->ListCheckpoints(id).value().size(), 1u);
  record.job_id = "j-unknown";
  EXPECT_EQ(store->InsertCheckpoint(record).code(), absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, ReopenAfterCrashRequeuesRunningJobs) {
  std::string running_id, done_id;
  {
    auto store = OpenStore();
    Job running = store->InsertJob(MakeJob("a", 1)).value();
    running.state = JobState::kRunning;
    running.started_us = 50;
    running.devices = {"cpu"};
    ASSERT_TRUE(store->UpdateJob(running).ok());
    running_id = running.id;
    Job done = store->InsertJob(MakeJob("b", 2)).value();
    done.state = JobState::kSucceeded;
    ASSERT_TRUE(store->UpdateJob(done).ok());
    done_id = done.id;
    // The store is dropped without any cleanup, as a kill -9 would.
  }
  auto store = OpenStore();
  std::vector<std::string> requeued =
      store->RequeueRunningJobs("server restarted; resuming from the last checkpoint", 777).value();
  EXPECT_EQ(requeued, std::vector<std::string>{running_id});
  Job job = store->GetJob(running_id).value();
  EXPECT_EQ(job.state, JobState::kQueued);
  EXPECT_EQ(job.started_us, 50);
  std::vector<JobEvent> events = store->EventsAfter(running_id, 0, 0).value();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, EventType::kStateChanged);
  EXPECT_EQ(events[0].state, JobState::kQueued);
  EXPECT_EQ(events[0].time_us, 777);
  EXPECT_EQ(events[0].message, "server restarted; resuming from the last checkpoint");
  EXPECT_EQ(store->GetJob(done_id).value().state, JobState::kSucceeded);
  EXPECT_TRUE(store->RequeueRunningJobs("again", 778).value().empty());
}

}  // namespace
}  // namespace attune::store
