#include "export/report.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "config/json_internal.h"

namespace quarry::report {
namespace {

using internal::Json;

Json OptNum(const std::optional<double>& v) {
  if (!v) return nullptr;
  if (std::isinf(*v)) return *v > 0 ? "inf" : "-inf";
  return *v;
}

std::string Escape(absl::string_view s) {
  return absl::StrReplaceAll(s, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}});
}

// An inline SVG bar chart of one value per layer/linear (log scale).
std::string BarChart(const std::vector<std::pair<std::string, double>>& bars, const std::string& title,
                     const std::string& unit) {
  const int w = 900, h = 260, left = 60, bottom = 40, top = 30;
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\" "
      "aria-label=\"%s\"><title>%s</title><rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>",
      w, h, Escape(title), Escape(title));
  absl::StrAppendFormat(&svg, "<text x=\"%d\" y=\"18\" font-size=\"14\" font-family=\"sans-serif\">%s</text>",
                        left, Escape(title));
  std::vector<double> vals;
  for (const auto& b : bars)
    if (b.second > 0 && std::isfinite(b.second)) vals.push_back(std::log10(b.second));
  if (vals.empty()) return svg + "<text x=\"60\" y=\"60\" font-size=\"12\">no data</text></svg>";
  double lo = *std::min_element(vals.begin(), vals.end());
  double hi = *std::max_element(vals.begin(), vals.end());
  lo = std::floor(lo);
  hi = std::ceil(hi);
  if (hi <= lo) hi = lo + 1;
  const double plot_h = h - bottom - top, plot_w = w - left - 10;
  const double bw = plot_w / bars.size();
  for (int e = static_cast<int>(lo); e <= static_cast<int>(hi); ++e) {
    double y = top + plot_h * (1 - (e - lo) / (hi - lo));
    absl::StrAppendFormat(&svg, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                                "<text x=\"%d\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\" "
                                "font-family=\"sans-serif\">1e%d</text>",
                          left, w - 10, y, y, left - 4, y + 3, e);
  }
  for (size_t i = 0; i < bars.size(); ++i) {
    const double v = bars[i].second;
    if (!(v > 0) || !std::isfinite(v)) continue;
    double frac = (std::log10(v) - lo) / (hi - lo);
    double bh = std::max(1.0, plot_h * frac);
    double x = left + i * bw;
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#3b7dd8\">"
                          "<title>%s: %.4g %s</title></rect>",
                          x + 0.1 * bw, top + plot_h - bh, std::max(0.8 * bw, 0.5), bh,
                          Escape(bars[i].first), v, Escape(unit));
  }
  absl::StrAppendFormat(&svg, "<text x=\"%d\" y=\"%d\" font-size=\"11\" font-family=\"sans-serif\">"
                              "%s (log scale), left to right in model order</text></svg>",
                        left, h - 12, Escape(unit));
  return svg;
}

}  // namespace

double SqnrDb(double rel_mse) {
  if (rel_mse <= 0) return INFINITY;
  return -10.0 * std::log10(rel_mse);
}

std::string ToJson(const RunReport& r) {
  Json j = Json::object();
  j["model_dir"] = r.model_dir;
  j["model_type"] = r.model_type;
  j["weight_format"] = r.weight_format;
  j["calibration"] = r.calibration;
  j["evaluation"] = r.evaluation;
  j["perplexity"] = {{"float", OptNum(r.ppl_float)}, {"quantized", OptNum(r.ppl_quantized)},
                     {"scored_tokens", r.eval_tokens ? Json(*r.eval_tokens) : Json(nullptr)}};
  if (r.ppl_float && r.ppl_quantized)
    j["perplexity"]["relative_change"] = *r.ppl_quantized / *r.ppl_float - 1;
  j["total_seconds"] = r.total_seconds;
  j["peak_rss_bytes"] = r.peak_rss_bytes;
  j["peak_rss_anon_bytes"] = r.peak_rss_anon_bytes;
  j["peak_rss_file_bytes"] = r.peak_rss_file_bytes;
  j["max_resident_decoder_layers"] = r.max_resident_layers;
  j["bytes_read"] = r.bytes_read;
  j["bytes_written"] = r.bytes_written;
  j["calibration_forward"] = r.calibration_forward;
  j["layer_forwards"] = r.layer_forwards;
  j["resumed_layers"] = r.resumed_layers;
  j["work_plan"] = r.work_plan;
  Json stages = Json::object();
  for (const auto& [k, v] : r.stage_seconds) stages[k] = v;
  j["stage_seconds"] = stages;
  Json layers = Json::array();
  for (const auto& l : r.layers) {
    Json e = Json::object();
    e["index"] = l.index;
    e["seconds"] = l.seconds;
    Json s = Json::object();
    for (const auto& [k, v] : l.stage_seconds) s[k] = v;
    e["stage_seconds"] = s;
    e["hidden_rel_mse"] = OptNum(l.hidden_rel_mse);
    e["rss_bytes"] = l.rss_bytes;
    e["rss_anon_bytes"] = l.rss_anon_bytes;
    e["rss_file_bytes"] = l.rss_file_bytes;
    layers.push_back(e);
  }
  j["layers"] = layers;
  Json linears = Json::array();
  for (const auto& l : r.linears) {
    Json e = Json::object();
    e["name"] = l.name;
    e["matched_rule"] = l.rule;
    e["excluded"] = l.excluded;
    e["method"] = l.method;
    e["weight_spec"] = l.weight_spec;
    e["input_spec"] = l.input_spec;
    e["output_spec"] = l.output_spec;
    e["weight_rel_mse"] = OptNum(l.weight_rel_mse);
    e["weight_sqnr_db"] = OptNum(l.weight_sqnr_db);
    e["output_rel_mse"] = OptNum(l.output_rel_mse);
    e["output_sqnr_db"] = OptNum(l.output_sqnr_db);
    linears.push_back(e);
  }
  j["linears"] = linears;
  Json records = Json::array();
  for (const auto& a : r.algorithm_records) {
    Json e = Json::object();
    e["algorithm"] = a.algorithm;
    e["layer"] = a.layer;
    e["entry_index"] = a.entry_index;
    e["target"] = a.target;
    e["choice"] = a.choice;
    e["value"] = OptNum(a.value);
    e["loss_before"] = OptNum(a.loss_before);
    e["loss_after"] = OptNum(a.loss_after);
    e["scale_min"] = OptNum(a.scale_min);
    e["scale_max"] = OptNum(a.scale_max);
    records.push_back(e);
  }
  j["algorithm_records"] = records;
  j["warnings"] = r.warnings;
  j["runtimes"] = Json::parse(RuntimeVerdictsToJson(r.runtimes));
  j["config"] = r.config_json.empty() ? Json(nullptr) : Json::parse(r.config_json);
  return j.dump(2);
}

std::string ToHtml(const RunReport& r) {
  std::string h =
      "<!doctype html><html><head><meta charset=\"utf-8\"><title>Quarry quantization report</title>"
      "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:"
      "collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
      "th{background:#f3f3f3}.num{text-align:right;font-family:monospace}</style></head><body>";
  absl::StrAppend(&h, "<h1>Quantization report</h1><p>Model <code>", Escape(r.model_dir),
                  "</code> (", Escape(r.model_type), "), weights ", Escape(r.weight_format), ".</p>");
  absl::StrAppend(&h, "<table><tr><th>calibration</th><td>", Escape(r.calibration),
                  "</td></tr><tr><th>evaluation</th><td>",
                  Escape(r.evaluation.empty() ? "none" : r.evaluation), "</td></tr>");
  absl::StrAppend(&h, "<tr><th>perplexity (float)</th><td class=\"num\">",
                  r.ppl_float ? absl::StrFormat("%.4f", *r.ppl_float) : "-", "</td></tr>");
  absl::StrAppend(&h, "<tr><th>perplexity (quantized)</th><td class=\"num\">",
                  r.ppl_quantized ? absl::StrFormat("%.4f", *r.ppl_quantized) : "-");
  if (r.ppl_float && r.ppl_quantized)
    absl::StrAppendFormat(&h, " (%+.2f%%)", 100 * (*r.ppl_quantized / *r.ppl_float - 1));
  absl::StrAppendFormat(&h, "</td></tr><tr><th>time</th><td class=\"num\">%.1f s</td></tr>"
                            "<tr><th>peak RSS</th><td class=\"num\">%.0f MiB</td></tr>"
                            "<tr><th>decoder layers resident at once</th><td class=\"num\">%d</td></tr></table>",
                        r.total_seconds, r.peak_rss_bytes / (1 << 20), r.max_resident_layers);
  std::vector<std::pair<std::string, double>> bars;
  for (const auto& l : r.linears)
    if (l.output_rel_mse) bars.emplace_back(l.name, *l.output_rel_mse);
  absl::StrAppend(&h, "<h2>Per-linear output error</h2>",
                  BarChart(bars, "relative output MSE per linear", "relative MSE"));
  std::vector<std::pair<std::string, double>> drift;
  for (const auto& l : r.layers)
    if (l.hidden_rel_mse) drift.emplace_back(absl::StrCat("layer ", l.index), *l.hidden_rel_mse);
  if (!drift.empty())
    absl::StrAppend(&h, "<h2>Hidden-state drift</h2>",
                    BarChart(drift, "relative MSE of hidden states vs float, after each layer",
                             "relative MSE"));
  absl::StrAppend(&h, "<h2>Stages</h2><table><tr><th>stage</th><th>seconds</th></tr>");
  for (const auto& [k, v] : r.stage_seconds)
    absl::StrAppendFormat(&h, "<tr><td>%s</td><td class=\"num\">%.2f</td></tr>", Escape(k), v);
  absl::StrAppend(&h, "</table><h2>Linears</h2><table><tr><th>layer</th><th>rule</th><th>method</th>"
                      "<th>weight</th><th>input</th><th>output</th><th>weight SQNR dB</th>"
                      "<th>output SQNR dB</th></tr>");
  for (const auto& l : r.linears) {
    absl::StrAppend(&h, "<tr><td>", Escape(l.name), "</td><td>", Escape(l.rule), "</td><td>",
                    Escape(l.method), "</td><td>", Escape(l.weight_spec), "</td><td>",
                    Escape(l.input_spec), "</td><td>", Escape(l.output_spec),
                    "</td><td class=\"num\">",
                    l.weight_sqnr_db ? absl::StrFormat("%.2f", *l.weight_sqnr_db) : "-",
                    "</td><td class=\"num\">",
                    l.output_sqnr_db ? absl::StrFormat("%.2f", *l.output_sqnr_db) : "-", "</td></tr>");
  }
  absl::StrAppend(&h, "</table>");
  if (!r.runtimes.empty()) {
    absl::StrAppend(&h, "<h2>Runtimes</h2><table><tr><th>runtime</th><th>loads</th><th>how</th>"
                        "<th>rule</th><th>layer</th><th>why</th></tr>");
    for (const auto& v : r.runtimes) {
      const size_t rows = std::max<size_t>(1, v.breaches.size() + v.notes.size());
      absl::StrAppend(&h, "<tr><td rowspan=\"", rows, "\">", Escape(v.runtime),
                      "</td><td rowspan=\"", rows, "\">", v.loads ? "yes" : "<b>no</b>",
                      "</td><td rowspan=\"", rows, "\">", Escape(v.how.empty() ? "-" : v.how),
                      "</td>");
      if (v.breaches.empty() && v.notes.empty()) absl::StrAppend(&h, "<td>-</td><td>-</td><td>-</td></tr>");
      bool first = true;
      for (const auto* list : {&v.breaches, &v.notes}) {
        for (const auto& b : *list) {
          if (!first) absl::StrAppend(&h, "<tr>");
          first = false;
          absl::StrAppend(&h, "<td>", list == &v.notes ? "note " : "", Escape(b.rule),
                          "</td><td>", Escape(b.layer),
                          b.more_layers ? absl::StrCat(" (and ", b.more_layers, " more)") : "",
                          "</td><td>", Escape(b.message), "</td></tr>");
        }
      }
    }
    absl::StrAppend(&h, "</table>");
  }
  if (!r.warnings.empty()) {
    absl::StrAppend(&h, "<h2>Warnings</h2><ul>");
    for (const auto& w : r.warnings) absl::StrAppend(&h, "<li>", Escape(w), "</li>");
    absl::StrAppend(&h, "</ul>");
  }
  absl::StrAppend(&h, "<h2>Configuration</h2><pre>", Escape(r.config_json), "</pre></body></html>\n");
  return h;
}

absl::Status WriteReport(const RunReport& report, const std::string& dir) {
  for (const auto& [name, text] : {std::pair<std::string, std::string>{"report.json", ToJson(report) + "\n"},
                                   {"report.html", ToHtml(report)}}) {
    const std::string path = dir + "/" + name;
    const std::string tmp = path + ".partial";
    {
      std::ofstream out(tmp, std::ios::binary);
      out << text;
      if (!out) return absl::InternalError(absl::StrCat("cannot write '", tmp, "'"));
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
      return absl::InternalError(absl::StrCat("cannot rename '", tmp, "'"));
  }
  return absl::OkStatus();
}

}  // namespace quarry::report
