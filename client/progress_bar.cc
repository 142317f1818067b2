#include "client/progress_bar.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace attune::client {

ProgressBar::ProgressBar(std::ostream* out, BarOutput output, int width)
    : out_(out), output_(output), width_(std::max(1, width)) {}

void ProgressBar::Update(int64_t done, int64_t total, absl::string_view detail) {
  if (output_ == BarOutput::kPlain) return;
  std::string line = Render(done, total, width_, detail);
  size_t pad = shown_length_ > line.size() ? shown_length_ - line.size() : 0;
  *out_ << "\r" << line << std::string(pad, ' ') << std::flush;
  shown_length_ = std::max<size_t>(line.size(), 1);
}

void ProgressBar::Finish() {
  if (shown_length_ == 0) return;
  *out_ << "\n" << std::flush;
  shown_length_ = 0;
}

std::string ProgressBar::Render(int64_t done, int64_t total, int width, absl::string_view detail) {
  std::string percent = "  ?%";
  int filled = 0;
  if (total > 0) {
    double fraction = std::clamp(static_cast<double>(done) / total, 0.0, 1.0);
    // Rounded down, so that a full bar and 100% mean done.
    filled = static_cast<int>(std::floor(fraction * width));
    percent = absl::StrFormat("%3d%%", static_cast<int>(std::floor(fraction * 100)));
  }
  std::string line =
      absl::StrCat("[", std::string(filled, '#'), std::string(width - filled, '.'), "] ", percent);
  if (!detail.empty()) absl::StrAppend(&line, " ", detail);
  return line;
}

std::string DurationText(double seconds) {
  int64_t s = static_cast<int64_t>(std::round(std::max(0.0, seconds)));
  if (s >= 3600) return absl::StrFormat("%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
  return absl::StrFormat("%d:%02d", s / 60, s % 60);
}

}  // namespace attune::client
