// The text format as prometheus/common's expfmt writes it: escapes in HELP (backslash, newline) and
// label values (backslash, newline, double quote), floats in their shortest round-trip form with
// +Inf, -Inf and NaN spelled as Prometheus reads them.
#include <agente/metrics.hpp>

#include <charconv>
#include <cmath>

namespace agente {

namespace {

void escape(std::string& out, std::string_view s, bool quote) {
    for (char c : s) {
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else if (c == '"' && quote) out += "\\\"";
        else out += c;
    }
}

void put_double(std::string& out, double v) {
    if (std::isnan(v)) out += "NaN";
    else if (std::isinf(v)) out += v > 0 ? "+Inf" : "-Inf";
    else {
        char buf[32];
        out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
    }
}

template <class Int>
void put_int(std::string& out, Int v) {
    char buf[24];
    out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

}  // namespace

void MetricsText::family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    escape(out_, help, false);
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
}

void MetricsText::series(std::string_view name, MetricLabels labels, std::string_view extra_name,
                         std::string_view extra_value) {
    out_ += name;
    if (labels.size() == 0 && extra_name.empty()) {
        out_ += ' ';
        return;
    }
    char sep = '{';
    auto label = [&](std::string_view n, std::string_view v) {
        out_ += sep;
        out_ += n;
        out_ += "=\"";
        escape(out_, v, true);
        out_ += '"';
        sep = ',';
    };
    for (const auto& [n, v] : labels) label(n, v);
    if (!extra_name.empty()) label(extra_name, extra_value);
    out_ += "} ";
}

void MetricsText::sample(std::string_view name, MetricLabels labels, std::uint64_t value) {
    series(name, labels);
    put_int(out_, value);
    out_ += '\n';
}

void MetricsText::sample(std::string_view name, MetricLabels labels, std::int64_t value) {
    series(name, labels);
    put_int(out_, value);
    out_ += '\n';
}

void MetricsText::sample(std::string_view name, MetricLabels labels, double value) {
    series(name, labels);
    put_double(out_, value);
    out_ += '\n';
}

void MetricsText::histogram(std::string_view name, MetricLabels labels, std::span<const double> bounds,
                            std::span<const std::uint64_t> counts, double sum) {
    std::string bucket = std::string(name) + "_bucket";
    std::uint64_t cumulated = 0;
    for (std::size_t i = 0; i < counts.size(); ++i) {
        cumulated += counts[i];
        std::string le;
        if (i < bounds.size()) put_double(le, bounds[i]);
        else le = "+Inf";
        series(bucket, labels, "le", le);
        put_int(out_, cumulated);
        out_ += '\n';
    }
    series(std::string(name) + "_sum", labels);
    put_double(out_, sum);
    out_ += '\n';
    series(std::string(name) + "_count", labels);
    put_int(out_, cumulated);
    out_ += '\n';
}

}  // namespace agente
