#include "client/token_command.h"

#include "gtest/gtest.h"

namespace attune::client {
namespace {

TEST(TokenCommandTest, NewTokensAreLongAndDifferent) {
  absl::StatusOr<std::string> a = NewToken();
  absl::StatusOr<std::string> b = NewToken();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 7u + 64u);
  EXPECT_EQ(a->rfind("attune_", 0), 0u);
  EXPECT_NE(*a, *b);
}

TEST(TokenCommandTest, LineHoldsTheSha256OfTheToken) {
  // echo -n abc | sha256sum
  const std::string abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  EXPECT_EQ(TokenLine("abc", "team-a", TokenRole::kTenant).value(), abc + " team-a");
  EXPECT_EQ(TokenLine("abc", "ops", TokenRole::kAdmin).value(), abc + " ops admin");
  absl::StatusOr<std::string> bad = TokenLine("abc", "a b", TokenRole::kTenant);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "--tenant: 'a b' must be 1..64 of [A-Za-z0-9_.-]");
}

}  // namespace
}  // namespace attune::client
