// DownloadAdapterTo against a fake Attune service that sends exactly the chunks a test gives it:
// the only way to see how the client takes a stream that production's server never sends, one
// that ends short of the size its info declared (a proxy cutting it, a server bug).
#include "client/adapter_download.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "attune/v1/attune.grpc.pb.h"
#include "common/sha256.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace attune::client {
namespace {

namespace fs = std::filesystem;

// Answers DownloadAdapter with `chunks`, then OK; every other method is unimplemented.
class FakeService final : public v1::Attune::Service {
 public:
  explicit FakeService(std::vector<v1::AdapterChunk> chunks) : chunks_(std::move(chunks)) {}
  grpc::Status DownloadAdapter(grpc::ServerContext*, const v1::DownloadAdapterRequest*,
                               grpc::ServerWriter<v1::AdapterChunk>* writer) override {
    for (const v1::AdapterChunk& chunk : chunks_) writer->Write(chunk);
    return grpc::Status::OK;
  }

 private:
  const std::vector<v1::AdapterChunk> chunks_;
};

std::string HexSha256(const std::string& bytes) {
  Sha256 sha;
  sha.Update(bytes.data(), bytes.size());
  return *sha.HexDigest();
}

// The chunks of a one-file archive that declares `declared` bytes and sends `sent`, with the
// trailer's hash of what was sent (so that only the size can tell the stream is short).
std::vector<v1::AdapterChunk> OneFileStream(int64_t declared, const std::string& sent) {
  std::vector<v1::AdapterChunk> chunks(4);
  chunks[0].mutable_info()->set_job_id("j-1");
  chunks[0].mutable_info()->set_step(5);
  chunks[0].mutable_info()->set_total_size(declared);
  chunks[0].mutable_info()->set_file_count(1);
  chunks[1].mutable_file()->set_path("adapter_model.safetensors");
  chunks[1].mutable_file()->set_size(declared);
  chunks[2].set_data(sent);
  chunks[3].mutable_trailer()->set_sha256(HexSha256(sent));
  return chunks;
}

class AdapterDownloadTest : public ::testing::Test {
 protected:
  absl::StatusOr<DownloadResult> Download(std::vector<v1::AdapterChunk> chunks) {
    FakeService service(std::move(chunks));
    int port = 0;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service);
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    EXPECT_NE(port, 0);
    AttuneClient client("127.0.0.1:" + std::to_string(port));
    client.set_timeout(std::chrono::seconds(10));
    DownloadOptions options;
    options.job_id = "j-1";
    options.dir = dest_.string();
    absl::StatusOr<DownloadResult> result = DownloadAdapterTo(client, options);
    server->Shutdown();
    return result;
  }

  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("adapter_download_test." + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    dest_ = dir_ / "adapter";
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  fs::path dest_;
};

TEST_F(AdapterDownloadTest, WholeStreamIsCommitted) {
  absl::StatusOr<DownloadResult> result = Download(OneFileStream(10, "0123456789"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->bytes, 10);
  EXPECT_EQ(fs::file_size(dest_ / "adapter_model.safetensors"), 10u);
}

TEST_F(AdapterDownloadTest, ShortStreamIsDataLoss) {
  absl::StatusOr<DownloadResult> result = Download(OneFileStream(100, std::string(40, 'x')));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(result.status().message(), "download: the stream ended after 40 of 100 bytes");
  EXPECT_FALSE(fs::exists(dest_));  // nothing committed
}

}  // namespace
}  // namespace attune::client
