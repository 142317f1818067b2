// What escapes the engine as an exception becomes a specific status: out of memory is
// RESOURCE_EXHAUSTED, anything else INTERNAL, never INVALID_ARGUMENT (which means bad input).
#include "server/engine/exception_status.h"

#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <new>
#include <stdexcept>

#include "absl/status/statusor.h"

namespace attune::engine {
namespace {

TEST(ExceptionStatusTest, PassesResultsThrough) {
  absl::StatusOr<int> value = CatchExceptions("check", [] { return absl::StatusOr<int>(7); });
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(*value, 7);
  absl::Status bad = CatchExceptions(
      "check", [] { return absl::InvalidArgumentError("train: x.jsonl:2: not valid JSON"); });
  EXPECT_EQ(bad, absl::InvalidArgumentError("train: x.jsonl:2: not valid JSON"));
}

TEST(ExceptionStatusTest, OutOfHostMemoryIsResourceExhausted) {
  absl::StatusOr<int> result =
      CatchExceptions("check", []() -> absl::StatusOr<int> { throw std::bad_alloc(); });
  EXPECT_EQ(result.status(), absl::ResourceExhaustedError("check: out of memory: std::bad_alloc"));
}

TEST(ExceptionStatusTest, OutOfDeviceMemoryIsResourceExhausted) {
  absl::StatusOr<int> result = CatchExceptions("training", []() -> absl::StatusOr<int> {
    throw c10::OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB", "backtrace");
  });
  EXPECT_EQ(result.status(),
            absl::ResourceExhaustedError(
                "training: out of memory: CUDA out of memory. Tried to allocate 2.00 GiB"));
}

TEST(ExceptionStatusTest, LibTorchErrorIsInternal) {
  absl::StatusOr<int> result = CatchExceptions(
      "training", []() -> absl::StatusOr<int> { throw c10::Error("shape mismatch", "backtrace"); });
  EXPECT_EQ(result.status(), absl::InternalError("training: shape mismatch"));
}

TEST(ExceptionStatusTest, OtherExceptionsAreInternal) {
  absl::Status status = CatchExceptions(
      "check", []() -> absl::Status { throw std::runtime_error("filesystem error: boom"); });
  EXPECT_EQ(status, absl::InternalError("check: filesystem error: boom"));
  status = CatchExceptions("check", []() -> absl::Status { throw 42; });
  EXPECT_EQ(status, absl::InternalError("check: an exception that is not std::exception"));
}

}  // namespace
}  // namespace attune::engine
