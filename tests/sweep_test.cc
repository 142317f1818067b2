// `attune sweep` and `attune compare` end to end: the real attuned, the real CLI and the example
// model. A sweep of 2 configurations x 2 seeds (12 steps each, evaluated every 4), submitted
// twice (the second time creates nothing), then `compare` in text, JSON and CSV, checked against
// each job's own metrics as GetJob and WatchJob report them, and the dashboard's sweep view in
// headless Chromium. Every wait is bounded.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "client/attune_client.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/attuned_process.h"
#include "tests/chromium_page.h"
#include "tests/job_waits.h"

namespace attune::testing {
namespace {

namespace fs = std::filesystem;
using google::protobuf::util::TimeUtil;
using nlohmann::json;

constexpr char kSweepFile[] =
    "name: e2e\n"
    "model: model\n"
    "train: train.jsonl\n"
    "validation: validation.jsonl\n"
    "task: classification\n"
    "lr: 3.0e-3\n"
    "batch_size: 32\n"
    "max_seq_len: 64\n"
    "max_steps: 12\n"
    "eval_every: 4\n";

// What the test reads of one job itself, to check the table against.
struct JobFacts {
  std::string targets, seed;
  double best_accuracy = 0;
  double auc = 0;         // evaluations at steps 4, 8, 12: (a4 + 2 a8 + a12) / 4
  int64_t converged = 0;  // the first step with loss <= L1 - 0.9 (L1 - L12) (12 steps: w = 1)
  int64_t params = 0, adapter_bytes = 0;
  double wall_seconds = 0;
};

JobFacts ReadFacts(const AttunedProcess& server, client::AttuneClient& client,
                   const std::string& id) {
  JobFacts facts;
  v1::Job job = client.GetJob(id).value();
  EXPECT_EQ(job.state(), v1::SUCCEEDED) << job.error();
  facts.targets = job.spec().labels().at("attune.grid.targets");
  facts.seed = job.spec().labels().at("attune.grid.seed");
  facts.params = job.trainable_parameters();
  facts.adapter_bytes = job.adapter_bytes();
  facts.wall_seconds = TimeUtil::DurationToNanoseconds(job.finish_time() - job.start_time()) / 1e9;
  std::map<int64_t, double> accuracy, loss;
  EXPECT_TRUE(WatchJobFor(server.address(), id, 0, 30, [&](const v1::JobEvent& event) {
                if (event.has_eval()) accuracy[event.eval().step()] = event.eval().accuracy();
                if (event.has_step()) loss[event.step().step()] = event.step().train_loss();
                return true;
              }).ok());
  EXPECT_EQ(accuracy.size(), 3u);
  EXPECT_EQ(loss.size(), 12u);
  EXPECT_DOUBLE_EQ(accuracy[12], job.latest_eval().accuracy());  // the job's own last eval
  facts.best_accuracy = std::max({accuracy[4], accuracy[8], accuracy[12]});
  facts.auc = (accuracy[4] + 2 * accuracy[8] + accuracy[12]) / 4;
  const double target = loss[1] - 0.9 * (loss[1] - loss[12]);
  for (const auto& [step, value] : loss) {
    if (value <= target) {
      facts.converged = step;
      break;
    }
  }
  return facts;
}

double Mean(double a, double b) { return (a + b) / 2; }
double Std(double a, double b) { return std::fabs(a - b) / std::sqrt(2.0); }  // n - 1 = 1

class SweepTest : public ::testing::Test {
 protected:
  void SetUp() override {
    example_ = dir_.path() + "/example";
    fs::create_directories(example_);
    ASSERT_TRUE(MakeExample(example_));
  }

  std::string WriteSweep(const std::string& name, const std::string& grid) {
    const std::string path = example_ + "/" + name;
    std::ofstream(path) << kSweepFile << grid;
    return path;
  }

  TempDir dir_;
  std::string example_;
};

// The rows of `compare --output csv`, cells unquoted (the test's cells hold no quotes).
std::vector<std::vector<std::string>> ParseCsv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  for (absl::string_view line : absl::StrSplit(text, "\r\n", absl::SkipEmpty())) {
    std::vector<std::string> row;
    std::string cell;
    bool quoted = false;
    for (char c : line) {
      if (c == '"') {
        quoted = !quoted;
      } else if (c == ',' && !quoted) {
        row.push_back(cell);
        cell.clear();
      } else {
        cell += c;
      }
    }
    row.push_back(cell);
    rows.push_back(row);
  }
  return rows;
}

// The dashboard's sweep view in headless Chromium: the same rows as `compare` and one loss curve
// per job, 12 points each.
void CheckDashboard(const AttunedProcess& server, const std::string& sweep_id,
                    const std::string& work_dir, const json& table) {
  ChromiumPage page(absl::StrCat("http://", server.http_address(), "/#sweep=", sweep_id), work_dir);
  ASSERT_TRUE(page.ok());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  json points;
  while (std::chrono::steady_clock::now() < deadline) {
    points = page.Evaluate("document.getElementById('sweep-loss-chart').dataset.points");
    if (points == "48") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_EQ(points, "48") << page.Log();  // 4 jobs x 12 steps
  EXPECT_EQ(page.Evaluate("document.querySelectorAll('#sweep-table tbody tr').length"), 2);
  EXPECT_EQ(page.Evaluate("document.getElementById('sweep-pane').hidden"), false);
  EXPECT_EQ(page.Evaluate("document.getElementById('job-pane').hidden"), true);
  for (int g = 0; g < 2; ++g) {
    const json& m = table["groups"][g]["devMetric"];
    const std::string cells =
        absl::StrCat("[...document.querySelectorAll('#sweep-table tbody tr')[", g,
                     "].children].map(td => td.textContent)");
    json row = page.Evaluate(cells);
    ASSERT_TRUE(row.is_array()) << row;
    EXPECT_EQ(row[0], table["groups"][g]["config"]["targets"]);
    EXPECT_EQ(row[1], "2/2");
    EXPECT_EQ(row[2],
              absl::StrFormat("%.4f ± %.4f", m["mean"].get<double>(), m["std"].get<double>()));
  }
  EXPECT_EQ(page.Evaluate("document.querySelector('#sweeps tbody tr').dataset.sweepId"), sweep_id);
}

TEST_F(SweepTest, SweepThenCompareInAllThreeFormats) {
  AttunedProcess server(dir_.path() + "/data", {"--data-roots", example_, "--http", "127.0.0.1:0"});
  ASSERT_FALSE(server.address().empty());
  // A job outside the sweep, which its label keeps out of the sweep's list and table.
  CliResult other = RunCli(server.address(), ExampleSubmitArgs(example_, {"--max-steps", "1"}));
  ASSERT_EQ(other.exit_code, 0) << other.err;
  const std::string sweep_file =
      WriteSweep("sweep.yaml", "grid:\n  targets: [[q, v], [q, k, v]]\n  seed: [0, 1]\n");
  CliResult submitted =
      RunCli(server.address(), {"--output", "json", "sweep", "--config", sweep_file});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  json out = json::parse(submitted.out);
  const std::string sweep_id = out["sweepId"];
  const std::vector<std::string> ids = out["jobIds"];
  ASSERT_EQ(ids.size(), 4u);
  // Submitted again: the same sweep and the same jobs, nothing new.
  CliResult again = RunCli(server.address(), {"sweep", "--config", sweep_file});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, sweep_id + "\n");
  client::AttuneClient client(server.address());
  v1::ListJobsRequest all;
  EXPECT_EQ(client.ListJobs(all).value().jobs_size(), 5);

  // ListJobs by the sweep's label, in pages of 3: newest first, so the last job first.
  v1::ListJobsRequest by_label;
  *by_label.add_label_selector() = "attune.sweep=" + sweep_id;
  by_label.set_page_size(3);
  v1::ListJobsResponse page1 = client.ListJobs(by_label).value();
  ASSERT_EQ(page1.jobs_size(), 3);
  EXPECT_EQ(page1.jobs(0).id(), ids[3]);
  by_label.set_page_token(page1.next_page_token());
  v1::ListJobsResponse page2 = client.ListJobs(by_label).value();
  ASSERT_EQ(page2.jobs_size(), 1);
  EXPECT_EQ(page2.jobs(0).id(), ids[0]);
  EXPECT_EQ(page2.next_page_token(), "");
  CliResult listed = RunCli(server.address(), {"list", "--label", "attune.sweep=" + sweep_id});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(std::vector<std::string>(absl::StrSplit(listed.out, '\n', absl::SkipEmpty())).size(),
            4u)
      << listed.out;

  std::vector<JobFacts> facts;
  for (const std::string& id : ids) {
    WaitForJob(client, id, IsTerminal, 120);
    facts.push_back(ReadFacts(server, client, id));
  }
  // Grid order: targets slowest, seed fastest.
  ASSERT_EQ(facts[0].targets, "q,v");
  ASSERT_EQ(facts[1].seed, "1");
  ASSERT_EQ(facts[2].targets, "q,k,v");

  CliResult as_json = RunCli(server.address(), {"--output", "json", "compare", sweep_id});
  ASSERT_EQ(as_json.exit_code, 0) << as_json.err;
  json table = json::parse(as_json.out);
  EXPECT_EQ(table["sweepId"], sweep_id);
  EXPECT_EQ(table["metric"], "accuracy");
  EXPECT_EQ(table["gridFields"], json::array({"targets"}));
  ASSERT_EQ(table["groups"].size(), 2u);
  for (int g = 0; g < 2; ++g) {
    const json& group = table["groups"][g];
    const JobFacts& a = facts[2 * g];
    const JobFacts& b = facts[2 * g + 1];
    SCOPED_TRACE(a.targets);
    EXPECT_EQ(group["config"], json({{"targets", a.targets}}));
    EXPECT_EQ(group["jobs"], 2);
    EXPECT_EQ(group["jobIds"], json::array({ids[2 * g], ids[2 * g + 1]}));
    EXPECT_EQ(group["seeds"], json::array({"0", "1"}));
    EXPECT_EQ(group["devMetric"]["n"], 2);
    EXPECT_NEAR(group["devMetric"]["mean"].get<double>(), Mean(a.best_accuracy, b.best_accuracy),
                1e-12);
    EXPECT_NEAR(group["devMetric"]["std"].get<double>(), Std(a.best_accuracy, b.best_accuracy),
                1e-12);
    EXPECT_EQ(group["trainableParameters"]["mean"].get<double>(), a.params);
    EXPECT_EQ(a.params, b.params);
    EXPECT_EQ(group["adapterBytes"]["mean"].get<double>(), Mean(a.adapter_bytes, b.adapter_bytes));
    EXPECT_NEAR(group["wallSeconds"]["mean"].get<double>(), Mean(a.wall_seconds, b.wall_seconds),
                1e-6);
    EXPECT_NEAR(group["evalAuc"]["mean"].get<double>(), Mean(a.auc, b.auc), 1e-12);
    EXPECT_NEAR(group["stepsToConverge"]["mean"].get<double>(), Mean(a.converged, b.converged),
                1e-12);
  }
  EXPECT_GT(facts[2].params, facts[0].params);  // q,k,v trains more than q,v

  CliResult as_csv = RunCli(server.address(), {"--output", "csv", "compare", sweep_id});
  ASSERT_EQ(as_csv.exit_code, 0) << as_csv.err;
  std::vector<std::vector<std::string>> rows = ParseCsv(as_csv.out);
  ASSERT_EQ(rows.size(), 3u) << as_csv.out;
  EXPECT_EQ(rows[0][0], "targets");
  EXPECT_EQ(rows[0][3], "accuracy_mean");
  EXPECT_EQ(rows[2][0], "q,k,v");
  EXPECT_EQ(rows[2][1], "2");
  EXPECT_EQ(rows[2][2], "2");
  EXPECT_NEAR(std::stod(rows[2][3]), Mean(facts[2].best_accuracy, facts[3].best_accuracy), 1e-9);
  EXPECT_EQ(std::stoll(rows[1][5]), facts[0].params);

  CliResult as_text = RunCli(server.address(), {"compare", sweep_id});
  ASSERT_EQ(as_text.exit_code, 0) << as_text.err;
  std::vector<std::string> lines = absl::StrSplit(as_text.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 4u) << as_text.out;  // heading, column names, 2 rows
  EXPECT_EQ(lines[2].substr(0, 5), "q,v  ");
  EXPECT_NE(lines[3].find(absl::StrFormat("  2/2   %.4f",
                                          Mean(facts[2].best_accuracy, facts[3].best_accuracy))),
            std::string::npos)
      << as_text.out;

  CheckDashboard(server, sweep_id, dir_.path(), table);

  // An unknown sweep is NOT_FOUND (exit 3).
  EXPECT_EQ(RunCli(server.address(), {"compare", "s-0000000000000000"}).exit_code, 3);
}

TEST_F(SweepTest, ABadGridValueFailsBeforeAnyJobIsSubmitted) {
  AttunedProcess server(dir_.path() + "/data", {"--data-roots", example_});
  ASSERT_FALSE(server.address().empty());
  // The second job is refused by the server's range check, in the validate-only pass.
  CliResult bad = RunCli(
      server.address(),
      {"sweep", "--config", WriteSweep("bad.yaml", "grid:\n  targets: [[q, v]]\n  rank: [4, 0]\n"),
       "--sweep-id", "s-bad"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err,
            "attune: INVALID_ARGUMENT: grid: job 2 of 2 (targets=q,v rank=0): lora.rank: 0 is out "
            "of range; expected 1..4096\n");
  // A value the client can read as no job field fails before the server is asked.
  CliResult unknown =
      RunCli(server.address(),
             {"sweep", "--config", WriteSweep("unknown.yaml", "grid:\n  method: [lora, dorra]\n")});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_EQ(unknown.err,
            "attune: INVALID_ARGUMENT: grid.method: value 'dorra': method: unknown method "
            "'dorra'; expected one of lora, full, dora\n");
  client::AttuneClient client(server.address());
  EXPECT_EQ(client.ListJobs(v1::ListJobsRequest()).value().jobs_size(), 0);
}

}  // namespace
}  // namespace attune::testing
