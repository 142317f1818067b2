// Tokens and tenants through the real attuned (--auth-tokens, on loopback): a missing, wrong or
// revoked (after SIGHUP) token is UNAUTHENTICATED on gRPC and 401 on HTTP; tenant B gets
// NOT_FOUND for tenant A's job on every RPC (ListCheckpoints and DeleteJob included, which leaves
// it in place), in the same words as for an id that does not exist, and sees none of it in
// ListJobs, the dashboard's JSON or /metrics; an admin sees both; request ids are per tenant; a
// tenant's own data roots confine its paths. Tokens come from `attune token create`. Every wait
// is bounded.
#include <httplib.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_split.h"
#include "client/attune_client.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/attuned_process.h"
#include "tests/job_waits.h"

namespace attune::testing {
namespace {

namespace fs = std::filesystem;

struct Token {
  std::string token;
  std::string line;  // for the tokens file
};

Token CreateToken(const std::vector<std::string>& args) {
  std::vector<std::string> all = {"token", "create"};
  all.insert(all.end(), args.begin(), args.end());
  CliResult r = RunCli("unused:1", all);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  if (lines.size() != 2) {
    ADD_FAILURE() << "token create printed: " << r.out;
    return {};
  }
  return {lines[0], lines[1]};
}

client::AttuneClient ClientWith(const std::string& address, const std::string& token) {
  return client::AttuneClient(address, grpc::InsecureChannelCredentials(), token);
}

// GET with `token` ("" = no Authorization header); status -1 when the request failed.
std::pair<int, std::string> Get(const std::string& host_port, const std::string& path,
                                const std::string& token) {
  httplib::Client http("http://" + host_port);
  http.set_connection_timeout(5);
  http.set_read_timeout(10);
  httplib::Headers headers;
  if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
  httplib::Result result = http.Get(path.c_str(), headers);
  if (!result) return {-1, ""};
  return {result->status, result->body};
}

class TenantsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    example_ = dir_.path() + "/example";
    fs::create_directories(example_);
    ASSERT_TRUE(MakeExample(example_));
    alpha_ = CreateToken({"--tenant", "alpha"});
    beta_ = CreateToken({"--tenant", "beta"});
    admin_ = CreateToken({"--tenant", "ops", "--admin"});
    tokens_path_ = dir_.path() + "/tokens";
    WriteTokens({alpha_.line, beta_.line, admin_.line});
    server_ = std::make_unique<AttunedProcess>(
        dir_.path() + "/data", std::vector<std::string>{"--data-roots", example_, "--auth-tokens",
                                                        tokens_path_, "--http", "127.0.0.1:0"});
    ASSERT_FALSE(server_->address().empty());
  }

  void WriteTokens(const std::vector<std::string>& lines) {
    std::ofstream out(tokens_path_, std::ios::trunc);
    out << "# tenants of the test\n";
    for (const std::string& line : lines) out << line << "\n";
  }

  // Submits the example job as `token` with `extra` flags; returns its id.
  std::string Submit(const Token& token, const std::vector<std::string>& extra) {
    std::vector<std::string> args = ExampleSubmitArgs(example_, extra);
    args.insert(args.end(), {"--token", token.token});
    CliResult r = RunCli(server_->address(), args);
    EXPECT_EQ(r.exit_code, 0) << r.err << server_->Log();
    return r.out.substr(0, r.out.find('\n'));
  }

  TempDir dir_;
  std::string example_;
  std::string tokens_path_;
  Token alpha_, beta_, admin_;
  std::unique_ptr<AttunedProcess> server_;
};

TEST_F(TenantsTest, MissingWrongAndRevokedTokensAreUnauthenticated) {
  const std::string& address = server_->address();
  absl::StatusOr<v1::ListJobsResponse> none = client::AttuneClient(address).ListJobs({});
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(none.status().message(), "no token: send 'authorization: Bearer TOKEN'");
  absl::StatusOr<v1::ListJobsResponse> wrong = ClientWith(address, alpha_.token + "x").ListJobs({});
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(wrong.status().message(), "unknown or revoked token");
  client::AttuneClient alpha = ClientWith(address, alpha_.token);
  ASSERT_TRUE(alpha.ListJobs({}).ok());
  // The CLI: --token, else $ATTUNE_TOKEN; without either the server says UNAUTHENTICATED.
  EXPECT_EQ(RunCli(address, {"list", "--token", alpha_.token}).exit_code, 0);
  CliResult no_token = RunCli(address, {"list"});
  EXPECT_EQ(no_token.exit_code, 1) << no_token.err;
  EXPECT_NE(no_token.err.find("no token"), std::string::npos) << no_token.err;

  // HTTP: every endpoint but /healthz needs the token.
  const std::string& http = server_->http_address();
  EXPECT_EQ(Get(http, "/healthz", "").first, 200);
  for (const char* path : {"/", "/api/jobs", "/metrics", "/static/app.js"}) {
    EXPECT_EQ(Get(http, path, "").first, 401) << path;
    EXPECT_EQ(Get(http, path, beta_.token + "x").first, 401) << path;
    EXPECT_EQ(Get(http, path, beta_.token).first, 200) << path;
  }

  // Revoked: alpha's line goes, SIGHUP, and within seconds alpha is refused; beta still works.
  WriteTokens({beta_.line, admin_.line});
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  absl::Status revoked;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    revoked = alpha.ListJobs({}).status();
    if (!revoked.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(revoked.code(), absl::StatusCode::kUnauthenticated) << server_->Log();
  EXPECT_EQ(revoked.message(), "unknown or revoked token");
  EXPECT_EQ(Get(http, "/api/jobs", alpha_.token).first, 401);
  EXPECT_TRUE(ClientWith(address, beta_.token).ListJobs({}).ok());
  // A broken file on SIGHUP keeps the tokens in use.
  WriteTokens({"not-a-hash beta"});
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(ClientWith(address, beta_.token).ListJobs({}).ok());
}

TEST_F(TenantsTest, OtherTenantsJobsAreNotFoundEverywhere) {
  const std::string& address = server_->address();
  // A long job, so that /metrics has its per-job series while we look.
  const std::string a_job = Submit(alpha_, {"--max-steps", "100000", "--request-id", "same"});
  const std::string b_job = Submit(beta_, {"--max-steps", "1", "--request-id", "same"});
  ASSERT_FALSE(a_job.empty());
  EXPECT_NE(a_job, b_job);  // request ids are per tenant
  client::AttuneClient alpha = ClientWith(address, alpha_.token);
  client::AttuneClient beta = ClientWith(address, beta_.token);
  client::AttuneClient admin = ClientWith(address, admin_.token);
  WaitForJob(
      admin, a_job, [](const v1::Job& j) { return j.state() == v1::RUNNING; }, 60);

  // Beta gets NOT_FOUND in the words used for an id that does not exist.
  EXPECT_EQ(beta.GetJob("j-0000000000000000").status().ToString(),
            "NOT_FOUND: job 'j-0000000000000000' not found");
  const std::string expected = "NOT_FOUND: job '" + a_job + "' not found";
  EXPECT_EQ(beta.GetJob(a_job).status().ToString(), expected);
  EXPECT_EQ(beta.CancelJob(a_job).status().ToString(), expected);
  EXPECT_EQ(beta.PauseJob(a_job).status().ToString(), expected);
  EXPECT_EQ(beta.ResumeJob(a_job).status().ToString(), expected);
  absl::Status watch = beta.WatchJob(a_job, 0, [](const v1::JobEvent&) { return true; });
  EXPECT_EQ(watch.ToString(), expected);
  v1::DownloadAdapterRequest download;
  download.set_job_id(a_job);
  absl::Status downloaded =
      beta.DownloadAdapter(download, [](const v1::AdapterChunk&) { return absl::OkStatus(); });
  EXPECT_EQ(downloaded.ToString(), expected);
  EXPECT_EQ(beta.ListCheckpoints(a_job).status().ToString(), expected);
  // Not FAILED_PRECONDITION ("is RUNNING"): that would tell beta the job exists.
  EXPECT_EQ(beta.DeleteJob(a_job).status().ToString(), expected);
  // ListJobs: beta sees only its own; alpha only its own; the admin both.
  const auto ids = [](client::AttuneClient& c) {
    std::vector<std::string> out;
    absl::StatusOr<v1::ListJobsResponse> list = c.ListJobs({});
    EXPECT_TRUE(list.ok()) << list.status();
    if (list.ok()) {
      for (const v1::Job& job : list->jobs()) out.push_back(job.id() + "/" + job.owner());
    }
    return out;
  };
  EXPECT_EQ(ids(beta), std::vector<std::string>{b_job + "/beta"});
  EXPECT_EQ(ids(alpha), std::vector<std::string>{a_job + "/alpha"});
  EXPECT_EQ(ids(admin), (std::vector<std::string>{b_job + "/beta", a_job + "/alpha"}));
  // Alpha's job was not touched by beta's cancel or pause.
  EXPECT_EQ(alpha.GetJob(a_job)->state(), v1::RUNNING);

  // The dashboard's JSON.
  const std::string& http = server_->http_address();
  nlohmann::json beta_jobs = nlohmann::json::parse(Get(http, "/api/jobs", beta_.token).second);
  ASSERT_EQ(beta_jobs["jobs"].size(), 1u) << beta_jobs;
  EXPECT_EQ(beta_jobs["jobs"][0]["id"], b_job);
  nlohmann::json admin_jobs = nlohmann::json::parse(Get(http, "/api/jobs", admin_.token).second);
  EXPECT_EQ(admin_jobs["jobs"].size(), 2u) << admin_jobs;
  for (const std::string path :
       {"/api/jobs/" + a_job, "/api/jobs/" + a_job + "/events", "/api/jobs/" + a_job + "/stream"}) {
    std::pair<int, std::string> got = Get(http, path, beta_.token);
    EXPECT_EQ(got.first, 404) << path;
    EXPECT_EQ(got.second, nlohmann::json({{"error", "job '" + a_job + "' not found"}}).dump());
  }
  EXPECT_EQ(Get(http, "/api/jobs/" + a_job, alpha_.token).first, 200);

  // /metrics: the running job's series for its tenant and the admin, not for beta.
  const std::string label = "job_id=\"" + a_job + "\"";
  std::string admin_metrics;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline &&
         admin_metrics.find("attune_job_train_loss{" + label) == std::string::npos) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    admin_metrics = Get(http, "/metrics", admin_.token).second;
  }
  ASSERT_NE(admin_metrics.find("attune_job_train_loss{" + label), std::string::npos)
      << admin_metrics;
  EXPECT_NE(Get(http, "/metrics", alpha_.token).second.find(label), std::string::npos);
  const std::string beta_metrics = Get(http, "/metrics", beta_.token).second;
  EXPECT_NE(beta_metrics.find("attune_jobs"), std::string::npos) << beta_metrics;
  EXPECT_EQ(beta_metrics.find(label), std::string::npos) << beta_metrics;
  EXPECT_EQ(alpha.GetJob(a_job)->state(), v1::RUNNING);  // it was running all along

  // Alpha (the owner) and the admin may act on it.
  ASSERT_TRUE(admin.CancelJob(a_job).ok());
  WaitForJob(alpha, a_job, IsTerminal, 60);

  // Finished, it could be deleted, but not by beta: it is still there for alpha after beta tried.
  EXPECT_EQ(beta.DeleteJob(a_job).status().ToString(), expected);
  EXPECT_EQ(alpha.GetJob(a_job)->state(), v1::CANCELLED);
  EXPECT_TRUE(alpha.ListCheckpoints(a_job).ok());
  // Beta's own finished job: alpha cannot delete it, beta can.
  WaitForJob(beta, b_job, IsTerminal, 60);
  EXPECT_EQ(alpha.DeleteJob(b_job).status().ToString(), "NOT_FOUND: job '" + b_job + "' not found");
  EXPECT_TRUE(beta.GetJob(b_job).ok());
  EXPECT_TRUE(beta.DeleteJob(b_job).ok());
  EXPECT_EQ(beta.GetJob(b_job).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(TenantsTest, TenantRootsConfineItsPaths) {
  server_.reset();
  const std::string own = dir_.path() + "/alpha-files";
  fs::create_directories(own);
  WriteTokens({alpha_.line + " roots=" + own, beta_.line});
  server_ = std::make_unique<AttunedProcess>(
      dir_.path() + "/data", std::vector<std::string>{"--data-roots", example_ + "," + own,
                                                      "--auth-tokens", tokens_path_});
  ASSERT_FALSE(server_->address().empty());
  // The example lies in the server's roots but not in alpha's: refused for alpha, fine for beta.
  std::vector<std::string> args = ExampleSubmitArgs(example_, {"--max-steps", "1"});
  args.insert(args.end(), {"--token", alpha_.token});
  CliResult refused = RunCli(server_->address(), args);
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_NE(refused.err.find("model: " + fs::canonical(example_ + "/model").string() +
                             " is outside the data roots (" + fs::canonical(own).string() + ")"),
            std::string::npos)
      << refused.err;
  EXPECT_FALSE(Submit(beta_, {"--max-steps", "1"}).empty());
}

TEST_F(TenantsTest, QuotasQueueTheExtraJobsAndRefuseOversizedData) {
  server_.reset();
  WriteTokens({alpha_.line + " max_jobs=1", beta_.line + " max_dataset_bytes=10", admin_.line});
  server_ = std::make_unique<AttunedProcess>(
      dir_.path() + "/data", std::vector<std::string>{"--data-roots", example_, "--auth-tokens",
                                                      tokens_path_, "--slots-per-device", "2"});
  ASSERT_FALSE(server_->address().empty());
  client::AttuneClient alpha = ClientWith(server_->address(), alpha_.token);
  const std::string first = Submit(alpha_, {"--max-steps", "100000"});
  const std::string second = Submit(alpha_, {"--max-steps", "1"});
  WaitForJob(
      alpha, first, [](const v1::Job& j) { return j.state() == v1::RUNNING; }, 60);
  // A free slot, but alpha is at max_jobs: the second waits QUEUED and says why.
  std::string reason;
  absl::Status watched = WatchJobFor(
      server_->address(), second, 0, 30,
      [&](const v1::JobEvent& event) {
        if (!event.has_warning()) return true;
        reason = event.warning().message();
        return false;
      },
      alpha_.token);
  EXPECT_TRUE(watched.ok()) << watched;
  EXPECT_EQ(reason, "waiting: tenant 'alpha' runs 1 job(s), its max_jobs is 1");
  EXPECT_EQ(alpha.GetJob(second)->state(), v1::QUEUED);
  ASSERT_TRUE(alpha.CancelJob(first).ok());
  v1::Job done = WaitForJob(alpha, second, IsTerminal, 120);
  EXPECT_EQ(done.state(), v1::SUCCEEDED);

  // Beta's data is over its max_dataset_bytes: refused, naming the limit.
  const int64_t bytes =
      fs::file_size(example_ + "/train.jsonl") + fs::file_size(example_ + "/validation.jsonl");
  std::vector<std::string> args = ExampleSubmitArgs(example_, {"--max-steps", "1"});
  args.insert(args.end(), {"--token", beta_.token});
  CliResult refused = RunCli(server_->address(), args);
  EXPECT_EQ(refused.exit_code, 1) << refused.err;
  EXPECT_NE(refused.err.find("max_dataset_bytes: train + validation are " + std::to_string(bytes) +
                             " bytes; tenant 'beta' may use at most 10"),
            std::string::npos)
      << refused.err;
}

// A browser signs in: `/` without a token is the sign-in form (401), /login with a good token
// sets the HttpOnly cookie and sends the browser to `/`, and the cookie then works wherever the
// header does, with the same tenant's view; a wrong token gets the form again with the reason.
TEST_F(TenantsTest, BrowserSignsInWithACookie) {
  const std::string& http = server_->http_address();
  const std::string a_job = Submit(alpha_, {"--max-steps", "1"});
  httplib::Client browser("http://" + http);
  browser.set_connection_timeout(5);
  browser.set_read_timeout(10);
  httplib::Result form = browser.Get("/");
  ASSERT_TRUE(form);
  EXPECT_EQ(form->status, 401);
  EXPECT_NE(form->body.find("<form method=\"post\" action=\"/login\">"), std::string::npos);

  httplib::Result wrong = browser.Post("/login", httplib::Params{{"token", alpha_.token + "x"}});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  EXPECT_NE(wrong->body.find("unknown or revoked token"), std::string::npos) << wrong->body;
  EXPECT_FALSE(wrong->has_header("Set-Cookie"));

  httplib::Result signed_in = browser.Post("/login", httplib::Params{{"token", alpha_.token}});
  ASSERT_TRUE(signed_in);
  EXPECT_EQ(signed_in->status, 303);
  EXPECT_EQ(signed_in->get_header_value("Location"), "/");
  EXPECT_EQ(signed_in->get_header_value("Set-Cookie"),
            "attune_token=" + alpha_.token + "; Path=/; HttpOnly; SameSite=Strict");
  const httplib::Headers cookie = {{"Cookie", "theme=dark; attune_token=" + alpha_.token}};
  httplib::Result page = browser.Get("/", cookie);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("/static/app.js"), std::string::npos);
  httplib::Result jobs = browser.Get("/api/jobs", cookie);
  ASSERT_TRUE(jobs);
  ASSERT_EQ(jobs->status, 200);
  nlohmann::json list = nlohmann::json::parse(jobs->body);
  ASSERT_EQ(list["jobs"].size(), 1u);
  EXPECT_EQ(list["jobs"][0]["id"], a_job);
  const httplib::Headers beta_cookie = {{"Cookie", "attune_token=" + beta_.token}};
  httplib::Result hidden = browser.Get("/api/jobs/" + a_job, beta_cookie);
  ASSERT_TRUE(hidden);
  EXPECT_EQ(hidden->status, 404);
  httplib::Result bad = browser.Get("/api/jobs", {{"Cookie", "attune_token=nope"}});
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 401);
}

TEST(ExposedListenTest, NonLoopbackNeedsTlsAndTokensOrInsecure) {
  TempDir dir;
  std::string output;
  const int code = RunProgram({ATTUNED_PATH, "--listen", "0.0.0.0:0", "--data-dir",
                               dir.path() + "/data", "--devices", "cpu"},
                              "", &output, 30);
  EXPECT_EQ(code, 2) << output;
  EXPECT_NE(output.find("attuned: --listen: 0.0.0.0:0 is not a loopback address; serving it "
                        "needs --tls-cert, --tls-key and --auth-tokens (missing: "
                        "--tls-cert/--tls-key, --auth-tokens), or --insecure"),
            std::string::npos)
      << output;
}

}  // namespace
}  // namespace attune::testing
