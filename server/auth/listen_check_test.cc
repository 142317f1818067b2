#include "server/auth/listen_check.h"

#include "gtest/gtest.h"

namespace attune::auth {
namespace {

TEST(ListenCheckTest, LoopbackIsAlwaysAllowed) {
  for (const char* address : {"127.0.0.1:0", "[::1]:50051", "localhost:50051"}) {
    EXPECT_TRUE(CheckExposure("--listen", address, Transport::kPlaintext, Tokens::kOff,
                              Exposure::kRefuseInsecure)
                    .ok())
        << address;
  }
}

TEST(ListenCheckTest, ExposedNeedsTlsAndTokensOrInsecure) {
  absl::Status plain = CheckExposure("--listen", "0.0.0.0:50051", Transport::kPlaintext,
                                     Tokens::kOff, Exposure::kRefuseInsecure);
  EXPECT_EQ(plain.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(plain.message(),
            "--listen: 0.0.0.0:50051 is not a loopback address; serving it needs --tls-cert, "
            "--tls-key and --auth-tokens (missing: --tls-cert/--tls-key, --auth-tokens), or "
            "--insecure");
  absl::Status no_tokens =
      CheckExposure("--http", ":9090", Transport::kTls, Tokens::kOff, Exposure::kRefuseInsecure);
  EXPECT_EQ(no_tokens.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(no_tokens.message(),
            "--http: :9090 is not a loopback address; serving it needs --tls-cert, --tls-key and "
            "--auth-tokens (missing: --auth-tokens), or --insecure");
  EXPECT_TRUE(CheckExposure("--listen", "0.0.0.0:50051", Transport::kTls, Tokens::kRequired,
                            Exposure::kRefuseInsecure)
                  .ok());
  EXPECT_TRUE(CheckExposure("--listen", "0.0.0.0:50051", Transport::kPlaintext, Tokens::kOff,
                            Exposure::kAllowInsecure)
                  .ok());
}

}  // namespace
}  // namespace attune::auth
