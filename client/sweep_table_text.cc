#include "client/sweep_table_text.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/job_text.h"

namespace attune::client {
namespace {

using Row = std::vector<std::string>;

std::string Value(const std::optional<double>& value, const absl::FormatSpec<double>& format) {
  return value ? absl::StrFormat(format, *value) : "-";
}

// "0.7500 +- 0.0100", "0.7500" (one value), "-" (none).
std::string MeanStdText(const MeanStd& m, const absl::FormatSpec<double>& format) {
  if (!m.mean) return "-";
  if (!m.std) return absl::StrFormat(format, *m.mean);
  return absl::StrCat(absl::StrFormat(format, *m.mean), " +- ", absl::StrFormat(format, *m.std));
}

std::string BytesText(const MeanStd& m) {
  return m.mean ? HumanBytes(static_cast<int64_t>(*m.mean)) : "-";
}

std::string Aligned(const std::vector<Row>& rows) {
  std::vector<size_t> widths;
  for (const Row& row : rows) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const Row& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

std::string CsvCell(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

std::string CsvNumber(const std::optional<double>& value) {
  return value ? absl::StrFormat("%.10g", *value) : "";
}

}  // namespace

std::string SweepTableText(const SweepTable& table) {
  std::string out = absl::StrFormat(
      "sweep %s: %d configurations; %s = best evaluation per job (%s is better), mean +- std "
      "over seeds (n-1); steps to %.0f%% of the train-loss reduction; eval AUC = mean %s over "
      "the steps evaluated\n",
      table.sweep_id, table.groups.size(), table.metric,
      table.higher_is_better ? "higher" : "lower", kConvergenceFraction * 100, table.metric);
  Row header = table.grid_fields;
  for (const char* column :
       {"jobs", "", "params", "adapter", "wall s", "steps to converge", "eval AUC"}) {
    header.push_back(*column ? column : table.metric);
  }
  std::vector<Row> rows = {header};
  for (const SweepGroup& g : table.groups) {
    Row row;
    for (const std::string& field : table.grid_fields) {
      auto it = g.config.find(field);
      row.push_back(it == g.config.end() ? "-" : it->second);
    }
    row.push_back(absl::StrCat(g.seeds.size(), "/", g.jobs));
    row.push_back(MeanStdText(g.dev_metric, "%.4f"));
    row.push_back(Value(g.trainable_parameters.mean, "%.0f"));
    row.push_back(BytesText(g.adapter_bytes));
    row.push_back(MeanStdText(g.wall_seconds, "%.1f"));
    row.push_back(MeanStdText(g.steps_to_converge, "%.1f"));
    row.push_back(MeanStdText(g.eval_auc, "%.4f"));
    rows.push_back(std::move(row));
  }
  return out + Aligned(rows);
}

std::string SweepTableCsv(const SweepTable& table) {
  Row header = table.grid_fields;
  for (const std::string& column :
       {std::string("jobs"), std::string("succeeded"), table.metric + "_mean",
        table.metric + "_std", std::string("trainable_parameters_mean"),
        std::string("adapter_bytes_mean"), std::string("wall_seconds_mean"),
        std::string("wall_seconds_std"), std::string("steps_to_converge_mean"),
        std::string("steps_to_converge_std"), std::string("eval_auc_mean"),
        std::string("eval_auc_std")}) {
    header.push_back(column);
  }
  std::vector<Row> rows = {header};
  for (const SweepGroup& g : table.groups) {
    Row row;
    for (const std::string& field : table.grid_fields) {
      auto it = g.config.find(field);
      row.push_back(it == g.config.end() ? "" : it->second);
    }
    row.push_back(absl::StrCat(g.jobs));
    row.push_back(absl::StrCat(g.seeds.size()));
    for (const std::optional<double>& value :
         {g.dev_metric.mean, g.dev_metric.std, g.trainable_parameters.mean, g.adapter_bytes.mean,
          g.wall_seconds.mean, g.wall_seconds.std, g.steps_to_converge.mean,
          g.steps_to_converge.std, g.eval_auc.mean, g.eval_auc.std}) {
      row.push_back(CsvNumber(value));
    }
    rows.push_back(std::move(row));
  }
  std::string out;
  for (Row& row : rows) {
    for (std::string& cell : row) cell = CsvCell(cell);
    absl::StrAppend(&out, absl::StrJoin(row, ","), "\r\n");
  }
  return out;
}

}  // namespace attune::client
