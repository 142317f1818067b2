#include "server/auth/authenticator.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "common/sha256.h"
#include "gtest/gtest.h"

namespace attune::auth {
namespace {

namespace fs = std::filesystem;

std::string HashOf(const std::string& token) {
  Sha256 digest;
  digest.Update(token.data(), token.size());
  return digest.HexDigest().value();
}

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (fs::temp_directory_path() /
             ("attune_tokens_" +
              std::string(::testing::UnitTest::GetInstance()->current_test_info()->name())))
                .string();
    Write(HashOf("alpha-token") + " alpha max_jobs=2\n" + HashOf("root-token") + " ops admin\n");
  }
  void TearDown() override { fs::remove(path_); }
  void Write(const std::string& text) { std::ofstream(path_, std::ios::trunc) << text; }

  std::string path_;
};

TEST_F(AuthenticatorTest, KnownTokensBecomeTheirTenant) {
  auto auth = Authenticator::Create(path_);
  ASSERT_TRUE(auth.ok()) << auth.status();
  absl::StatusOr<Caller> alpha = (*auth)->Authenticate("Bearer alpha-token", "ipv4:10.0.0.5:4000");
  ASSERT_TRUE(alpha.ok()) << alpha.status();
  EXPECT_EQ(alpha->tenant, "alpha");
  EXPECT_FALSE(alpha->admin);
  EXPECT_TRUE(alpha->CanSee("alpha"));
  EXPECT_FALSE(alpha->CanSee("beta"));
  EXPECT_EQ(alpha->settings.quota.max_jobs, 2);
  absl::StatusOr<Caller> ops = (*auth)->Authenticate("bearer root-token", "ipv4:10.0.0.5:4000");
  ASSERT_TRUE(ops.ok()) << ops.status();
  EXPECT_EQ(ops->tenant, "ops");
  EXPECT_TRUE(ops->admin);
  EXPECT_TRUE(ops->CanSee("alpha"));
  EXPECT_EQ((*auth)->QuotaOf("alpha").max_jobs, 2);
  EXPECT_EQ((*auth)->QuotaOf("nobody").max_jobs, 0);
}

TEST_F(AuthenticatorTest, MissingMalformedAndUnknownTokensAreUnauthenticated) {
  auto auth = Authenticator::Create(path_);
  ASSERT_TRUE(auth.ok());
  const auto expect = [&](const std::string& header, const std::string& message) {
    absl::StatusOr<Caller> caller = (*auth)->Authenticate(header, "ipv4:127.0.0.1:1");
    EXPECT_EQ(caller.status().code(), absl::StatusCode::kUnauthenticated) << header;
    EXPECT_EQ(caller.status().message(), message);
  };
  expect("", "no token: send 'authorization: Bearer TOKEN'");
  expect("alpha-token", "authorization: expected 'Bearer TOKEN'");
  expect("Basic alpha-token", "authorization: expected 'Bearer TOKEN'");
  expect("Bearer alpha-tokeN", "unknown or revoked token");
  expect("Bearer " + HashOf("alpha-token"), "unknown or revoked token");  // the hash is no token
}

TEST_F(AuthenticatorTest, ReloadRevokesAndABrokenFileKeepsTheOldTable) {
  auto auth = Authenticator::Create(path_);
  ASSERT_TRUE(auth.ok());
  Write(HashOf("root-token") + " ops admin\n");
  ASSERT_TRUE((*auth)->Reload().ok());
  EXPECT_EQ((*auth)->Authenticate("Bearer alpha-token", "").status().code(),
            absl::StatusCode::kUnauthenticated);
  Write("not a hash\n");
  absl::Status reload = (*auth)->Reload();
  EXPECT_EQ(reload.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reload.message(), "--auth-tokens: " + path_ +
                                  ": line 1: 'not' is not a SHA-256 (64 lowercase hex characters)");
  EXPECT_TRUE((*auth)->Authenticate("Bearer root-token", "").ok());
}

TEST_F(AuthenticatorTest, UnreadableFileIsRefusedAtCreate) {
  auto auth = Authenticator::Create(path_ + ".missing");
  EXPECT_EQ(auth.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(auth.status().message(), "--auth-tokens: cannot read " + path_ + ".missing");
}

TEST(LoopbackOnlyTest, AcceptsLoopbackPeersAsTheAdminOfTenantNone) {
  auto auth = Authenticator::Create("");
  ASSERT_TRUE(auth.ok());
  EXPECT_FALSE((*auth)->requires_tokens());
  for (const char* peer : {"ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", "ipv6:[::ffff:127.0.0.1]:9",
                           "unix:/tmp/s", "127.0.0.1", "::1"}) {
    absl::StatusOr<Caller> caller = (*auth)->Authenticate("", peer);
    ASSERT_TRUE(caller.ok()) << peer << ": " << caller.status();
    EXPECT_EQ(caller->tenant, "");
    EXPECT_TRUE(caller->admin);
  }
  absl::StatusOr<Caller> remote = (*auth)->Authenticate("", "ipv4:10.1.2.3:5000");
  EXPECT_EQ(remote.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(remote.status().message(),
            "attuned accepts only loopback clients without --auth-tokens; ipv4:10.1.2.3:5000 is "
            "not one");
  EXPECT_FALSE(IsLoopbackPeer("ipv6:[::2]:5000"));
  // --insecure: anyone, still as the admin of tenant "".
  auto open = Authenticator::Create("", Peers::kAny);
  ASSERT_TRUE(open.ok());
  absl::StatusOr<Caller> anyone = (*open)->Authenticate("", "ipv4:10.1.2.3:5000");
  ASSERT_TRUE(anyone.ok()) << anyone.status();
  EXPECT_TRUE(anyone->admin);
  EXPECT_FALSE(IsLoopbackPeer("128.0.0.1"));
}

}  // namespace
}  // namespace attune::auth
