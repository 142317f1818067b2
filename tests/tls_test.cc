// TLS through the real attuned: certificates made here with the openssl CLI (a test CA, a server
// certificate for 127.0.0.1, a client certificate). A plaintext client fails against a TLS
// server and the CLI with --tls-ca works, on gRPC and on HTTP; with --tls-client-ca a client
// without a certificate is refused and one with a certificate signed by that CA is served.
#include <httplib.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/attuned_process.h"

namespace attune::testing {
namespace {

// Runs openssl with `args`; a test failure when it does not exit 0.
void OpenSsl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string output;
  ASSERT_EQ(RunProgram(argv, "", &output, 30), 0) << output;
}

// A CA, and a certificate signed by it with `extensions` (an openssl extfile's text).
void MakeCertificate(const std::string& dir, const std::string& name, const std::string& cn,
                     const std::string& extensions) {
  std::ofstream(dir + "/" + name + ".ext") << extensions;
  OpenSsl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
           dir + "/" + name + ".key", "-out", dir + "/" + name + ".csr", "-subj", "/CN=" + cn});
  OpenSsl({"x509", "-req", "-in", dir + "/" + name + ".csr", "-CA", dir + "/ca.pem", "-CAkey",
           dir + "/ca.key", "-CAcreateserial", "-days", "2", "-out", dir + "/" + name + ".pem",
           "-extfile", dir + "/" + name + ".ext"});
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    certs_ = dir_.path();
    OpenSsl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", certs_ + "/ca.key", "-out", certs_ + "/ca.pem", "-days", "2", "-subj",
             "/CN=attune test CA"});
    MakeCertificate(certs_, "server", "localhost",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
    MakeCertificate(certs_, "client", "a client", "extendedKeyUsage=clientAuth\n");
  }

  std::vector<std::string> ServerArgs() const {
    return {"--tls-cert", certs_ + "/server.pem", "--tls-key", certs_ + "/server.key",
            "--http",     "127.0.0.1:0"};
  }

  // GET /healthz over HTTPS trusting the test CA, with the client certificate when `with_cert`;
  // the status, or -1 when the connection failed.
  int HttpsHealth(const std::string& host_port, bool with_cert) const {
    const std::vector<std::string> parts = absl::StrSplit(host_port, ':');
    const std::string cert = with_cert ? certs_ + "/client.pem" : "";
    const std::string key = with_cert ? certs_ + "/client.key" : "";
    httplib::SSLClient https(parts[0], std::stoi(parts[1]), cert, key);
    https.set_ca_cert_path((certs_ + "/ca.pem").c_str());
    https.enable_server_certificate_verification(true);
    https.set_connection_timeout(5);
    https.set_read_timeout(5);
    httplib::Result result = https.Get("/healthz");
    return result ? result->status : -1;
  }

  TempDir dir_;
  std::string certs_;
};

TEST_F(TlsTest, PlaintextClientFailsAndTheCliWithTheCaWorks) {
  AttunedProcess server(dir_.path() + "/data", ServerArgs());
  ASSERT_FALSE(server.address().empty());
  CliResult plain = RunCli(server.address(), {"list"}, 60);
  EXPECT_EQ(plain.exit_code, 4) << plain.err;  // UNAVAILABLE: the handshake never happens
  CliResult tls = RunCli(server.address(), {"list", "--tls-ca", certs_ + "/ca.pem"}, 60);
  EXPECT_EQ(tls.exit_code, 0) << tls.err << server.Log();
  // The CA of someone else does not do.
  CliResult other_ca = RunCli(server.address(), {"list", "--tls-ca", certs_ + "/client.pem"}, 60);
  EXPECT_EQ(other_ca.exit_code, 4) << other_ca.err;

  httplib::Client http("http://" + server.http_address());
  http.set_connection_timeout(5);
  http.set_read_timeout(5);
  httplib::Result plain_http = http.Get("/healthz");
  EXPECT_TRUE(!plain_http || plain_http->status != 200);
  EXPECT_EQ(HttpsHealth(server.http_address(), /*with_cert=*/false), 200);
}

TEST_F(TlsTest, MutualTlsRefusesAClientWithoutACertificate) {
  std::vector<std::string> args = ServerArgs();
  args.insert(args.end(), {"--tls-client-ca", certs_ + "/ca.pem"});
  AttunedProcess server(dir_.path() + "/data", args);
  ASSERT_FALSE(server.address().empty());
  const std::string ca = certs_ + "/ca.pem";
  CliResult no_cert = RunCli(server.address(), {"list", "--tls-ca", ca}, 60);
  EXPECT_EQ(no_cert.exit_code, 4) << no_cert.err;
  CliResult with_cert = RunCli(server.address(),
                               {"list", "--tls-ca", ca, "--tls-cert", certs_ + "/client.pem",
                                "--tls-key", certs_ + "/client.key"},
                               60);
  EXPECT_EQ(with_cert.exit_code, 0) << with_cert.err << server.Log();
  EXPECT_EQ(HttpsHealth(server.http_address(), /*with_cert=*/false), -1);
  EXPECT_EQ(HttpsHealth(server.http_address(), /*with_cert=*/true), 200);
}

TEST_F(TlsTest, AKeyWithoutACertificateIsAUsageError) {
  std::string output;
  const int code = RunProgram({ATTUNED_PATH, "--listen", "127.0.0.1:0", "--data-dir",
                               dir_.path() + "/data", "--tls-key", certs_ + "/server.key"},
                              "", &output, 30);
  EXPECT_EQ(code, 2) << output;
  EXPECT_NE(output.find("attuned: --tls-cert: required with --tls-key"), std::string::npos)
      << output;
}

}  // namespace
}  // namespace attune::testing
