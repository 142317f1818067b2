#include "server/http/sweep_view.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include "server/http/fake_jobs_source.h"
#include "server/http/http_server.h"
#include "server/http/service_metrics.h"

namespace attune::http {
namespace {

using nlohmann::json;

// Job `index` of sweep s-1 (targets x seed), finished with the given best accuracy.
void AddSweepJob(FakeJobsSource* source, int index, const std::string& targets,
                 const std::string& seed, double accuracy) {
  JobView job;
  job.id = "j" + std::to_string(index);
  job.name = "sst2 targets=" + targets + " seed=" + seed;
  job.state = "QUEUED";
  job.spec.labels = {{"attune.sweep", "s-1"},
                     {"attune.sweep.index", std::to_string(index)},
                     {"attune.grid.targets", targets},
                     {"attune.grid.seed", seed}};
  job.started_unix_ms = 1000;
  job.finished_unix_ms = 3500 + 1000 * index;
  job.trainable_parameters = targets == "q,v" ? 1000 : 1500;
  job.adapter_bytes = 4096;
  source->PutJob(job);
  for (int step = 1; step <= 5; ++step) {
    StepMetrics metrics;
    metrics.step = step;
    metrics.train_loss = std::vector<double>{2.0, 1.2, 0.8, 0.55, 0.5}[step - 1];
    source->AddStep(job.id, metrics);
  }
  EvalMetrics eval;
  eval.step = 5;
  eval.loss = 0.4;
  eval.accuracy = accuracy;
  source->AddEval(job.id, eval);
  source->SetState(job.id, "SUCCEEDED");
}

class SweepViewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AddSweepJob(&source_, 0, "q,k,v", "0", 0.70);
    AddSweepJob(&source_, 1, "q,k,v", "1", 0.60);
    AddSweepJob(&source_, 2, "q,v", "0", 0.80);
    AddSweepJob(&source_, 3, "q,v", "1", 0.90);
    JobView other;  // not in a sweep
    other.id = "lonely";
    other.state = "RUNNING";
    source_.PutJob(other);
  }

  FakeJobsSource source_;
};

TEST_F(SweepViewTest, TableAndCurvesOfOneSweep) {
  absl::StatusOr<json> sweep = SweepToJson(source_, "s-1", "");
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  EXPECT_EQ((*sweep)["metric"], "accuracy");
  const json& groups = (*sweep)["groups"];
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0]["config"], json({{"targets", "q,k,v"}}));
  EXPECT_EQ(groups[0]["jobIds"], json::array({"j0", "j1"}));
  EXPECT_NEAR(groups[0]["devMetric"]["mean"].get<double>(), 0.65, 1e-12);
  EXPECT_NEAR(groups[0]["devMetric"]["std"].get<double>(), std::sqrt(0.005), 1e-12);
  EXPECT_EQ(groups[0]["trainableParameters"]["mean"], 1500.0);
  EXPECT_NEAR(groups[0]["wallSeconds"]["mean"].get<double>(), 3.0, 1e-12);  // 2.5 s and 3.5 s
  EXPECT_EQ(groups[0]["stepsToConverge"]["mean"], 4.0);  // 2.0 -> 0.5: 0.65 first at step 4
  EXPECT_NEAR(groups[1]["devMetric"]["mean"].get<double>(), 0.85, 1e-12);
  const json& curves = (*sweep)["curves"];
  ASSERT_EQ(curves.size(), 4u);
  EXPECT_EQ(curves[2]["jobId"], "j2");
  EXPECT_EQ(curves[2]["config"], json({{"targets", "q,v"}}));
  EXPECT_EQ(curves[2]["seed"], "0");
  EXPECT_EQ(curves[2]["trainLoss"], json::parse("[[1,2.0],[2,1.2],[3,0.8],[4,0.55],[5,0.5]]"));
}

TEST_F(SweepViewTest, UnknownSweepIsNotFoundAndUnknownMetricInvalid) {
  EXPECT_EQ(SweepToJson(source_, "s-2", "").status(),
            absl::NotFoundError("sweep 's-2': no job has the label attune.sweep=s-2"));
  EXPECT_EQ(SweepToJson(source_, "s-1", "acc").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SweepViewTest, ListsSweepsWithTheirStates) {
  absl::StatusOr<json> sweeps = SweepsToJson(source_);
  ASSERT_TRUE(sweeps.ok());
  EXPECT_EQ(*sweeps, json::parse(R"({"sweeps":[{"id":"s-1","jobs":4,"states":{"SUCCEEDED":4}}]})"));
}

TEST_F(SweepViewTest, LongCurvesAreThinnedKeepingTheLastPoint) {
  JobView job;
  job.id = "long";
  job.state = "RUNNING";
  job.spec.labels = {{"attune.sweep", "s-long"}, {"attune.sweep.index", "0"}};
  source_.PutJob(job);
  for (int step = 1; step <= 1201; ++step) {
    StepMetrics metrics;
    metrics.step = step;
    metrics.train_loss = 1.0;
    source_.AddStep("long", metrics);
  }
  absl::StatusOr<json> sweep = SweepToJson(source_, "s-long", "");
  ASSERT_TRUE(sweep.ok());
  const json& points = (*sweep)["curves"][0]["trainLoss"];
  // Stride ceil(1201 / 500) = 3: steps 1, 4, ..., 1201 (401 points; 1201 = 1 + 3 * 400).
  ASSERT_EQ(points.size(), 401u);
  EXPECT_EQ(points[1][0], 4);
  EXPECT_EQ(points.back()[0], 1201);
  // A running job draws its curve but is not counted in the table.
  EXPECT_EQ((*sweep)["groups"][0]["devMetric"]["n"], 0);
  EXPECT_EQ((*sweep)["groups"][0]["jobs"], 1);
}

TEST_F(SweepViewTest, ServedAtApiSweeps) {
  ServiceMetrics metrics(&source_, ServiceMetrics::Options{});
  auto server = HttpServer::Start(HttpServerOptions{}, &source_, &metrics);
  ASSERT_TRUE(server.ok()) << server.status();
  httplib::Client client("127.0.0.1", (*server)->port());
  client.set_read_timeout(5, 0);
  auto res = client.Get("/api/sweeps/s-1");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(json::parse(res->body), *SweepToJson(source_, "s-1", ""));
  auto by_loss = client.Get("/api/sweeps/s-1?metric=loss");
  ASSERT_TRUE(by_loss);
  EXPECT_EQ(json::parse(by_loss->body)["metric"], "loss");
  auto missing = client.Get("/api/sweeps/s-2");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  auto bad = client.Get("/api/sweeps/s-1?metric=acc");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  auto list = client.Get("/api/sweeps");
  ASSERT_TRUE(list);
  EXPECT_EQ(json::parse(list->body)["sweeps"][0]["id"], "s-1");
  (*server)->Shutdown();
}

}  // namespace
}  // namespace attune::http
