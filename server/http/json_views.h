// JSON forms of jobs and events for the dashboard's endpoints (/api/jobs, /api/jobs/<id>,
// /api/jobs/<id>/events).
//
// Field names follow the proto3 JSON mapping's lowerCamelCase so the dashboard and the gRPC
// clients read the same words. Times are milliseconds since the Unix epoch (0 = not yet).
#ifndef ATTUNE_SERVER_HTTP_JSON_VIEWS_H_
#define ATTUNE_SERVER_HTTP_JSON_VIEWS_H_

#include <vector>

#include "nlohmann/json.hpp"
#include "server/http/jobs_source.h"

namespace attune::http {

// {id, name, state, createdMs, startedMs, finishedMs, devices, step, totalSteps, trainLoss,
//  evalLoss, error}: what the job list shows.
nlohmann::json JobSummaryToJson(const JobView& job);

// The summary plus spec (targets, method, rank, alpha, lr, lrRatios, loraplusRatio, ...),
// parameter counts, adapterBytes, baseModelBytes, adapterRatio and the latest step and eval.
nlohmann::json JobDetailToJson(const JobView& job);

// {sequence, timeMs, type, ...}: "step" events add {step, totalSteps, epoch, trainLoss,
// learningRates, gradNorm, tokensPerSecond, samplesPerSecond, skipped, deviceMemory?
// {allocatedBytes, reservedBytes, peakAllocatedBytes} (CUDA jobs)}; "eval" events
// {step, evalLoss, examples, accuracy?, f1?, mcc?, pearson?, spearman?, perplexity?}; "checkpoint"
// events {step, adapterBytes, sha256, best}; "state" {state, message?}; "warning"/"error"
// {message}. This file is the one conversion from the typed views to JSON; latestStep and
// latestEval of the detail use the same forms.
nlohmann::json EventToJson(const JobEventView& event);

// {"jobId": id, "events": [...], "nextAfter": last sequence (or `after` when empty)}.
nlohmann::json EventsToJson(const std::string& job_id, int64_t after,
                            const std::vector<JobEventView>& events);

}  // namespace attune::http

#endif  // ATTUNE_SERVER_HTTP_JSON_VIEWS_H_
