#include "common/sha256.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"

namespace attune {
namespace {

namespace fs = std::filesystem;

fs::path WriteFile(const std::string& name, const std::string& bytes) {
  fs::path path = fs::temp_directory_path() / (name + "-" + std::to_string(getpid()));
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// Reference digests from `printf ... | sha256sum` (coreutils), not from this code.
TEST(Sha256Test, KnownDigests) {
  Sha256 empty;
  EXPECT_EQ(*empty.HexDigest(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 abc;
  abc.Update("a", 1);
  abc.Update("bc", 2);
  EXPECT_EQ(*abc.HexDigest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, FilesAreHashedAsIfConcatenated) {
  fs::path a = WriteFile("sha-a", "a");
  fs::path bc = WriteFile("sha-bc", "bc");
  EXPECT_EQ(*Sha256Files({a.string(), bc.string()}),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(*Sha256File(a.string()),
            "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb");
  fs::remove(a);
  fs::remove(bc);
}

TEST(Sha256Test, MissingAndUnreadableFilesAreErrors) {
  absl::StatusOr<std::string> missing = Sha256File("/nonexistent/attune-sha-test");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/attune-sha-test"), std::string::npos);
  // A directory opens but cannot be read.
  absl::StatusOr<std::string> dir = Sha256File(fs::temp_directory_path().string());
  EXPECT_EQ(dir.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(dir.status().message().find("cannot read"), std::string::npos);
}

}  // namespace
}  // namespace attune
