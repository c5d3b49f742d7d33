#include "app/rag/filters.hpp"

namespace agente::rag {

namespace {

using nlohmann::json;

bool comparable(const json& v) { return v.is_string() || v.is_number() || v.is_boolean(); }

// -1, 0, 1; nullopt when the two cannot be ordered.
std::optional<int> compare(const json& a, const json& b) {
    if (a.is_number() && b.is_number()) {
        double x = a.get<double>(), y = b.get<double>();
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a.is_string() && b.is_string()) {
        int c = a.get_ref<const std::string&>().compare(b.get_ref<const std::string&>());
        return c < 0 ? -1 : c > 0 ? 1 : 0;
    }
    return std::nullopt;
}

bool equal(const json& a, const json& b) {
    if (a.is_boolean() && b.is_boolean()) return a.get<bool>() == b.get<bool>();
    auto c = compare(a, b);
    return c && *c == 0;
}

struct Parser {
    std::string problem;
    int nodes = 0;

    std::optional<Filter> parse(const json& j, const std::string& at, int depth) {
        if (depth > max_filter_depth) return fail(at, "filters nest deeper than " + std::to_string(max_filter_depth));
        if (++nodes > max_filter_nodes) return fail(at, "more than " + std::to_string(max_filter_nodes) + " filters");
        if (!j.is_object()) return fail(at, "expected an object with a \"type\"");
        auto t = j.find("type");
        if (t == j.end() || !t->is_string()) return fail(at + ".type", "expected one of eq, ne, gt, gte, lt, lte, in, nin, and, or");
        const std::string& type = t->get_ref<const std::string&>();
        Filter f;
        if (type == "and" || type == "or") {
            f.op = type == "and" ? Filter::Op::all : Filter::Op::any;
            auto fs = j.find("filters");
            if (fs == j.end() || !fs->is_array() || fs->empty()) return fail(at + ".filters", "expected a non-empty list of filters");
            for (std::size_t i = 0; i < fs->size(); ++i) {
                auto sub = parse((*fs)[i], at + ".filters[" + std::to_string(i) + "]", depth + 1);
                if (!sub) return std::nullopt;
                f.filters.push_back(std::move(*sub));
            }
            return f;
        }
        static const std::pair<const char*, Filter::Op> ops[] = {
            {"eq", Filter::Op::eq}, {"ne", Filter::Op::ne}, {"gt", Filter::Op::gt},   {"gte", Filter::Op::gte},
            {"lt", Filter::Op::lt}, {"lte", Filter::Op::lte}, {"in", Filter::Op::in}, {"nin", Filter::Op::nin}};
        bool known = false;
        for (auto& [name, op] : ops)
            if (type == name) {
                f.op = op;
                known = true;
            }
        if (!known) return fail(at + ".type", "unknown filter type \"" + type + "\"");
        auto k = j.find("key");
        if (k == j.end() || !k->is_string()) return fail(at + ".key", "expected the attribute's name");
        f.key = k->get<std::string>();
        auto v = j.find("value");
        if (v == j.end()) return fail(at + ".value", "missing");
        if (f.op == Filter::Op::in || f.op == Filter::Op::nin) {
            if (!v->is_array()) return fail(at + ".value", "expected a list for " + type);
            for (auto& e : *v)
                if (!comparable(e)) return fail(at + ".value", "expected strings, numbers or booleans");
        } else if (!comparable(*v)) {
            return fail(at + ".value", "expected a string, a number or a boolean");
        }
        f.value = *v;
        return f;
    }

    std::nullopt_t fail(const std::string& at, const std::string& why) {
        problem = at + ": " + why;
        return std::nullopt;
    }
};

}  // namespace

std::optional<Filter> parse_filter(const json& j, std::string& problem) {
    Parser p;
    auto f = p.parse(j, "filters", 0);
    if (!f) problem = p.problem;
    return f;
}

bool matches(const Filter& f, const json& attributes) {
    switch (f.op) {
    case Filter::Op::all:
        for (auto& sub : f.filters)
            if (!matches(sub, attributes)) return false;
        return true;
    case Filter::Op::any:
        for (auto& sub : f.filters)
            if (matches(sub, attributes)) return true;
        return false;
    default:
        break;
    }
    if (!attributes.is_object()) return false;
    auto it = attributes.find(f.key);
    if (it == attributes.end() || !comparable(*it)) return false;
    const json& a = *it;
    auto in_list = [&] {
        for (auto& e : f.value)
            if (equal(a, e)) return true;
        return false;
    };
    switch (f.op) {
    case Filter::Op::eq: return equal(a, f.value);
    case Filter::Op::ne: return !equal(a, f.value);
    case Filter::Op::in: return in_list();
    case Filter::Op::nin: return !in_list();
    default: break;
    }
    auto c = compare(a, f.value);
    if (!c) return false;
    switch (f.op) {
    case Filter::Op::gt: return *c > 0;
    case Filter::Op::gte: return *c >= 0;
    case Filter::Op::lt: return *c < 0;
    case Filter::Op::lte: return *c <= 0;
    default: return false;
    }
}

std::optional<std::string> attributes_problem(const json& attributes) {
    constexpr std::size_t max_keys = 16, max_key = 64, max_string = 512;
    if (!attributes.is_object()) return "attributes: expected an object";
    if (attributes.size() > max_keys) return "attributes: at most 16 keys, got " + std::to_string(attributes.size());
    for (auto& [k, v] : attributes.items()) {
        if (k.size() > max_key) return "attributes: key \"" + k.substr(0, max_key) + "...\" is longer than 64 characters";
        if (v.is_string() && v.get_ref<const std::string&>().size() > max_string)
            return "attributes." + k + ": strings are at most 512 characters";
        if (!comparable(v)) return "attributes." + k + ": expected a string, a number or a boolean";
    }
    return std::nullopt;
}

}  // namespace agente::rag
