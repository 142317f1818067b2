#include "server/auth/tokens_file.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace attune::auth {
namespace {

constexpr size_t kMaxTenantLength = 64;

bool IsSha256Hex(absl::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsTenantName(absl::string_view text) {
  if (text.empty() || text.size() > kMaxTenantLength) return false;
  for (char c : text) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

absl::Status SetLimit(absl::string_view key, absl::string_view value, int64_t* limit) {
  int64_t parsed = 0;
  if (!absl::SimpleAtoi(value, &parsed) || parsed < 0) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": '", value, "' is not an integer >= 0"));
  }
  if (*limit != 0 && *limit != parsed) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, ": ", parsed, " conflicts with ", *limit, " given earlier"));
  }
  *limit = parsed;
  return absl::OkStatus();
}

// Applies one `key=value` setting to the tenant's settings.
absl::Status ApplySetting(absl::string_view setting, TenantSettings* settings) {
  const size_t eq = setting.find('=');
  const absl::string_view key = setting.substr(0, eq);
  const absl::string_view value = eq == absl::string_view::npos ? "" : setting.substr(eq + 1);
  if (eq == absl::string_view::npos || value.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", setting,
                     "' is not a setting; expected admin, roots=DIR[,DIR], max_jobs=N, "
                     "max_gpus=N or max_dataset_bytes=N"));
  }
  if (key == "roots") {
    std::vector<std::string> roots = absl::StrSplit(value, ',', absl::SkipEmpty());
    if (!settings->data_roots.empty() && settings->data_roots != roots) {
      return absl::InvalidArgumentError(absl::StrCat("roots: ", value, " conflicts with ",
                                                     absl::StrJoin(settings->data_roots, ","),
                                                     " given earlier"));
    }
    settings->data_roots = std::move(roots);
    return absl::OkStatus();
  }
  if (key == "max_jobs") return SetLimit(key, value, &settings->quota.max_jobs);
  if (key == "max_gpus") return SetLimit(key, value, &settings->quota.max_gpus);
  if (key == "max_dataset_bytes") return SetLimit(key, value, &settings->quota.max_dataset_bytes);
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown setting '", key, "'; expected roots, max_jobs, max_gpus or max_dataset_bytes"));
}

absl::Status ParseLine(absl::string_view line, TokenTable* table) {
  std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipWhitespace());
  if (fields.size() < 2) {
    return absl::InvalidArgumentError("expected SHA256 TENANT [admin] [key=value ...]");
  }
  TokenEntry entry;
  entry.sha256_hex = std::string(fields[0]);
  entry.tenant = std::string(fields[1]);
  if (!IsSha256Hex(entry.sha256_hex)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", fields[0], "' is not a SHA-256 (64 lowercase hex characters)"));
  }
  if (!IsTenantName(entry.tenant)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tenant '", fields[1], "' must be 1..64 of [A-Za-z0-9_.-]"));
  }
  for (const TokenEntry& other : table->tokens) {
    if (other.sha256_hex == entry.sha256_hex) {
      return absl::InvalidArgumentError("the same token is listed twice");
    }
  }
  TenantSettings& settings = table->tenants[entry.tenant];
  for (size_t i = 2; i < fields.size(); ++i) {
    if (fields[i] == "admin") {
      entry.admin = true;
      continue;
    }
    RETURN_IF_ERROR(ApplySetting(fields[i], &settings));
  }
  table->tokens.push_back(std::move(entry));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TokenTable> ParseTokensFile(absl::string_view text) {
  TokenTable table;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    line = line.substr(0, line.find('#'));
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    absl::Status parsed = ParseLine(line, &table);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("line ", number, ": ", parsed.message()));
    }
  }
  return table;
}

}  // namespace attune::auth
