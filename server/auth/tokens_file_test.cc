#include "server/auth/tokens_file.h"

#include <string>

#include "gtest/gtest.h"

namespace attune::auth {
namespace {

const std::string kHashA(64, 'a');
const std::string kHashB(64, 'b');

TEST(TokensFileTest, ParsesTokensTenantsAndSettings) {
  const std::string text = "# team tokens\n\n" + kHashA +
                           " alice roots=/data/a,/data/shared max_jobs=2  # alice's laptop\n" +
                           kHashB + " ops admin max_gpus=4 max_dataset_bytes=1000\n";
  absl::StatusOr<TokenTable> table = ParseTokensFile(text);
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->tokens.size(), 2u);
  EXPECT_EQ(table->tokens[0].sha256_hex, kHashA);
  EXPECT_EQ(table->tokens[0].tenant, "alice");
  EXPECT_FALSE(table->tokens[0].admin);
  EXPECT_EQ(table->tokens[1].tenant, "ops");
  EXPECT_TRUE(table->tokens[1].admin);
  const TenantSettings& alice = table->tenants.at("alice");
  EXPECT_EQ(alice.data_roots, (std::vector<std::string>{"/data/a", "/data/shared"}));
  EXPECT_EQ(alice.quota.max_jobs, 2);
  EXPECT_EQ(alice.quota.max_gpus, 0);
  const TenantSettings& ops = table->tenants.at("ops");
  EXPECT_EQ(ops.quota.max_gpus, 4);
  EXPECT_EQ(ops.quota.max_dataset_bytes, 1000);
  EXPECT_TRUE(ops.data_roots.empty());
}

TEST(TokensFileTest, SettingsOfOneTenantMergeAcrossLines) {
  absl::StatusOr<TokenTable> table =
      ParseTokensFile(kHashA + " t max_jobs=3\n" + kHashB + " t max_gpus=1\n");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->tenants.at("t").quota, (TenantQuota{3, 1, 0}));
}

void ExpectInvalid(const std::string& text, const std::string& message) {
  absl::StatusOr<TokenTable> table = ParseTokensFile(text);
  EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument) << text;
  EXPECT_EQ(table.status().message(), message);
}

TEST(TokensFileTest, RefusesBadLinesNamingTheLine) {
  ExpectInvalid("\nabc t\n", "line 2: 'abc' is not a SHA-256 (64 lowercase hex characters)");
  ExpectInvalid(
      std::string(64, 'A') + " t\n",
      "line 1: '" + std::string(64, 'A') + "' is not a SHA-256 (64 lowercase hex characters)");
  ExpectInvalid(kHashA + "\n", "line 1: expected SHA256 TENANT [admin] [key=value ...]");
  ExpectInvalid(kHashA + " a/b\n", "line 1: tenant 'a/b' must be 1..64 of [A-Za-z0-9_.-]");
  ExpectInvalid(kHashA + " t max_jobs=x\n", "line 1: max_jobs: 'x' is not an integer >= 0");
  ExpectInvalid(kHashA + " t max_jobs=-1\n", "line 1: max_jobs: '-1' is not an integer >= 0");
  ExpectInvalid(kHashA + " t colour=red\n",
                "line 1: unknown setting 'colour'; expected roots, max_jobs, max_gpus or "
                "max_dataset_bytes");
  ExpectInvalid(kHashA + " t superuser\n",
                "line 1: 'superuser' is not a setting; expected admin, roots=DIR[,DIR], "
                "max_jobs=N, max_gpus=N or max_dataset_bytes=N");
  ExpectInvalid(kHashA + " t\n" + kHashA + " u\n", "line 2: the same token is listed twice");
  ExpectInvalid(kHashA + " t max_jobs=1\n" + kHashB + " t max_jobs=2\n",
                "line 2: max_jobs: 2 conflicts with 1 given earlier");
}

}  // namespace
}  // namespace attune::auth
