#include "server/http/browser_login.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace attune::http {

std::string TokenFromCookies(const std::string& cookie_header) {
  for (absl::string_view pair : absl::StrSplit(cookie_header, ';')) {
    pair = absl::StripAsciiWhitespace(pair);
    if (absl::ConsumePrefix(&pair, kTokenCookie) && absl::ConsumePrefix(&pair, "=")) {
      return std::string(pair);
    }
  }
  return "";
}

std::string SessionCookie(const std::string& token, bool https) {
  return absl::StrCat(kTokenCookie, "=", token, "; Path=/; HttpOnly; SameSite=Strict",
                      https ? "; Secure" : "");
}

std::string LoginPage(const std::string& problem) {
  const std::string escaped = absl::StrReplaceAll(
      problem, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}});
  return absl::StrCat(
      "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>attune: sign in</title>"
      "</head>\n<body style=\"font-family: sans-serif; margin: 3em\"><main>"
      "<h1>attune</h1>",
      escaped.empty() ? "" : absl::StrCat("<p class=\"error\">", escaped, "</p>"),
      "<form method=\"post\" action=\"/login\"><label>Token "
      "<input type=\"password\" name=\"token\" autocomplete=\"current-password\" autofocus>"
      "</label> <button type=\"submit\">Sign in</button></form>"
      "<p>A token from <code>attune token create</code>, as the CLI's <code>--token</code>."
      "</p></main></body></html>\n");
}

}  // namespace attune::http
