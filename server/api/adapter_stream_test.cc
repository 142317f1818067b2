#include "server/api/adapter_stream.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace attune::api {
namespace {

namespace fs = std::filesystem;

// sha256 of "abc" "0123456789" "{}" and of "0123456789", from Python's hashlib.
constexpr char kArchiveSha[] = "52fa1f53796a9cf33ab7d60986f80106f699cd517849e8feed5ba88fdbc7f100";
constexpr char kSafetensorsSha[] =
    "84d89877f0d4041efb6bf91a16f0248f2fd573e6af05c19f96bedb9f882f7882";

// Each chunk as one short line, so that a whole stream compares as a vector of strings.
std::string Describe(const v1::AdapterChunk& chunk) {
  switch (chunk.chunk_case()) {
    case v1::AdapterChunk::kInfo:
      return absl::StrCat("info ", chunk.info().job_id(), " step ", chunk.info().step(), " total ",
                          chunk.info().total_size(), " files ", chunk.info().file_count());
    case v1::AdapterChunk::kFile:
      return absl::StrCat("file ", chunk.file().path(), " ", chunk.file().size(), "@",
                          chunk.file().offset());
    case v1::AdapterChunk::kData:
      return absl::StrCat("data ", chunk.data());
    case v1::AdapterChunk::kTrailer:
      return absl::StrCat("trailer ", chunk.trailer().sha256());
    case v1::AdapterChunk::CHUNK_NOT_SET:
      break;
  }
  return "empty";
}

class AdapterStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           absl::StrCat("attune_stream_", ::testing::UnitTest::GetInstance()->random_seed(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "adapter_config.json") << "abc";
    std::ofstream(dir_ / "adapter_model.safetensors") << "0123456789";
    std::ofstream(dir_ / "attune.json") << "{}";
    checkpoint_.step = 7;
    checkpoint_.dir = dir_.string();
    checkpoint_.sha256 = kSafetensorsSha;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<ArchiveFile> Files() const {
    absl::StatusOr<std::vector<ArchiveFile>> files = ListArchiveFiles(dir_.string(), false);
    EXPECT_TRUE(files.ok()) << files.status();
    return files.ok() ? *files : std::vector<ArchiveFile>{};
  }

  // Streams with 4-byte data chunks, collecting what the sink is given.
  absl::Status Stream(int64_t offset, std::vector<std::string>* chunks) {
    return StreamAdapter(
        "job-1", checkpoint_, Files(), offset,
        [chunks](const v1::AdapterChunk& chunk) {
          chunks->push_back(Describe(chunk));
          return absl::OkStatus();
        },
        /*chunk_bytes=*/4);
  }

  fs::path dir_;
  store::CheckpointRecord checkpoint_;
};

TEST_F(AdapterStreamTest, SendsInfoHeadersDataAndTrailerInOrder) {
  std::vector<std::string> chunks;
  ASSERT_TRUE(Stream(0, &chunks).ok());
  EXPECT_EQ(chunks, (std::vector<std::string>{
                        "info job-1 step 7 total 15 files 3",
                        "file adapter_config.json 3@0",
                        "data abc",
                        "file adapter_model.safetensors 10@3",
                        "data 0123",
                        "data 4567",
                        "data 89",
                        "file attune.json 2@13",
                        "data {}",
                        absl::StrCat("trailer ", kArchiveSha),
                    }));
}

// A resumed download: every header again, only the bytes from the offset on, and a trailer over
// the whole archive.
TEST_F(AdapterStreamTest, OffsetSkipsBytesButNotHeadersOrHash) {
  std::vector<std::string> chunks;
  ASSERT_TRUE(Stream(5, &chunks).ok());
  EXPECT_EQ(chunks, (std::vector<std::string>{
                        "info job-1 step 7 total 15 files 3",
                        "file adapter_config.json 3@0",
                        "file adapter_model.safetensors 10@3",
                        "data 23",
                        "data 4567",
                        "data 89",
                        "file attune.json 2@13",
                        "data {}",
                        absl::StrCat("trailer ", kArchiveSha),
                    }));
  chunks.clear();
  ASSERT_TRUE(Stream(15, &chunks).ok());
  EXPECT_EQ(chunks, (std::vector<std::string>{
                        "info job-1 step 7 total 15 files 3",
                        "file adapter_config.json 3@0",
                        "file adapter_model.safetensors 10@3",
                        "file attune.json 2@13",
                        absl::StrCat("trailer ", kArchiveSha),
                    }));
}

TEST_F(AdapterStreamTest, OffsetOutOfRangeIsInvalidArgument) {
  std::vector<std::string> chunks;
  absl::Status past = Stream(16, &chunks);
  EXPECT_EQ(past.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(past.message(), "offset: 16 is out of range; the archive has 15 bytes");
  absl::Status negative = Stream(-1, &chunks);
  EXPECT_EQ(negative.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(negative.message(), "offset: -1 is out of range; the archive has 15 bytes");
  EXPECT_EQ(chunks, std::vector<std::string>{});
}

TEST_F(AdapterStreamTest, CorruptSafetensorsIsDataLossAndNoTrailer) {
  checkpoint_.sha256 = std::string(64, '0');
  std::vector<std::string> chunks;
  absl::Status status = Stream(0, &chunks);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(status.message(),
            absl::StrCat("checkpoint: step 7 adapter_model.safetensors is corrupt on the server "
                         "(sha256 ",
                         kSafetensorsSha, ", recorded ", std::string(64, '0'), ")"));
  ASSERT_EQ(chunks.size(), 7u);
  EXPECT_EQ(chunks.back(), "data 89");
}

TEST_F(AdapterStreamTest, FileThatShrinksWhileSentIsDataLoss) {
  // Large enough that the reads go to the file, not to the stream's own buffer.
  const fs::path big = dir_ / "adapter_model.safetensors";
  std::ofstream(big, std::ios::trunc) << std::string(64 * 1024, 'x');
  checkpoint_.sha256.clear();
  int data_chunks = 0;
  absl::Status status = StreamAdapter(
      "job-1", checkpoint_, Files(), 0,
      [&](const v1::AdapterChunk& chunk) {
        if (chunk.has_data() && ++data_chunks == 2) fs::resize_file(big, 20 * 1024);
        return absl::OkStatus();
      },
      /*chunk_bytes=*/16 * 1024);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(status.message(),
            absl::StrCat("checkpoint: ", big.string(), " is shorter than it was a moment ago"));
}

TEST_F(AdapterStreamTest, PrunedFileIsNotFound) {
  std::vector<ArchiveFile> files = Files();
  fs::remove(dir_ / "attune.json");
  absl::Status status = StreamAdapter("job-1", checkpoint_, files, 0,
                                      [](const v1::AdapterChunk&) { return absl::OkStatus(); });
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(),
            absl::StrCat("checkpoint: cannot read ", (dir_ / "attune.json").string()));
}

TEST_F(AdapterStreamTest, SinkErrorEndsTheStream) {
  int taken = 0;
  absl::Status status = StreamAdapter(
      "job-1", checkpoint_, Files(), 0,
      [&](const v1::AdapterChunk&) {
        return ++taken == 3 ? absl::CancelledError("the client went away") : absl::OkStatus();
      },
      /*chunk_bytes=*/4);
  EXPECT_EQ(status, absl::CancelledError("the client went away"));
  EXPECT_EQ(taken, 3);
}

}  // namespace
}  // namespace attune::api
