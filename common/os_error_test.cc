#include "common/os_error.h"

#include <cerrno>

#include "gtest/gtest.h"

namespace attune {
namespace {

TEST(OsErrorTest, FullDiskIsResourceExhaustedWithTheOsWords) {
  absl::Status full = OsError("checkpoint: cannot write /d/x", ENOSPC);
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(full.message(), "checkpoint: cannot write /d/x: No space left on device");
  EXPECT_EQ(OsError("x", EDQUOT).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(OsError("x", ENOENT).code(), absl::StatusCode::kNotFound);
  absl::Status other = OsError("x", EACCES);
  EXPECT_EQ(other.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(other.message(), "x: Permission denied");
  EXPECT_EQ(OsError("x", 0).message(), "x");
}

}  // namespace
}  // namespace attune
