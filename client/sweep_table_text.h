// How `attune compare` prints a sweep's table (common/sweep_table.h) as text and as CSV; the
// JSON is common/sweep_table.h's SweepTableToJson, the same the dashboard reads.
//
// Pure functions: no I/O, thread-safe.
#ifndef ATTUNE_CLIENT_SWEEP_TABLE_TEXT_H_
#define ATTUNE_CLIENT_SWEEP_TABLE_TEXT_H_

#include <string>

#include "common/sweep_table.h"

namespace attune::client {

// An aligned table for people: a heading line that says what the columns measure, then one row
// per configuration: the grid fields, "jobs" as succeeded/all, the dev metric, trainable
// parameters, adapter size, wall seconds, steps to converge and eval AUC, each "mean +- std"
// ("-" where absent). Ends with a newline.
std::string SweepTableText(const SweepTable& table);

// RFC 4180 CSV, one row per configuration. Columns: the grid fields, then jobs, succeeded,
// <metric>_mean, <metric>_std, trainable_parameters_mean, adapter_bytes_mean, wall_seconds_mean,
// wall_seconds_std, steps_to_converge_mean, steps_to_converge_std, eval_auc_mean, eval_auc_std;
// numbers with 10 significant digits, empty cells where absent. Lines end with "\r\n".
std::string SweepTableCsv(const SweepTable& table);

}  // namespace attune::client

#endif  // ATTUNE_CLIENT_SWEEP_TABLE_TEXT_H_
