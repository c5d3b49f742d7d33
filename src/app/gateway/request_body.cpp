#include "app/gateway/request_body.hpp"

#include <nlohmann/json.hpp>

#include <iterator>

namespace agente::gateway {

namespace {

using nlohmann::json;

// An iterator over the body that leaves, at every step, how far nlohmann's lexer has read. A string
// token ends at its closing quote without reading further, so in the SAX callback for a key or a
// string value, `*read` is just past that token's closing quote.
class CountingIterator {
public:
    using iterator_category = std::input_iterator_tag;
    using value_type = char;
    using difference_type = std::ptrdiff_t;
    using pointer = const char*;
    using reference = const char&;

    CountingIterator(const char* at, const char** read) : at_(at), read_(read) {}
    reference operator*() const { return *at_; }
    CountingIterator& operator++() {
        *read_ = ++at_;
        return *this;
    }
    CountingIterator operator++(int) {
        CountingIterator before = *this;
        ++*this;
        return before;
    }
    bool operator==(const CountingIterator& o) const { return at_ == o.at_; }
    bool operator!=(const CountingIterator& o) const { return at_ != o.at_; }

private:
    const char* at_;
    const char** read_;
};

// Checks the shape the gateway needs and notes where the top-level "model" value lies; the values
// themselves are not kept (no tree).
class BodyScan : public nlohmann::json_sax<json> {
public:
    explicit BodyScan(const char* const* read) : read_(read) {}

    bool null() override { return value(kind::other); }
    bool boolean(bool v) override {
        if (depth_ == 1 && key_ == Key::stream) stream = v;
        return value(kind::boolean);
    }
    bool number_integer(number_integer_t) override { return value(kind::other); }
    bool number_unsigned(number_unsigned_t) override { return value(kind::other); }
    bool number_float(number_float_t, const string_t&) override { return value(kind::other); }
    bool binary(binary_t&) override { return value(kind::other); }
    bool string(string_t& v) override {
        if (depth_ == 1 && key_ == Key::model) {
            model = std::move(v);
            model_to = *read_;
        }
        return value(kind::string);
    }
    bool start_object(std::size_t) override {
        if (depth_ == 0) top_is_object = true;
        value(kind::other);
        ++depth_;
        return true;
    }
    bool end_object() override { return --depth_, true; }
    bool start_array(std::size_t) override {
        value(kind::other);
        ++depth_;
        return true;
    }
    bool end_array() override { return --depth_, true; }
    bool key(string_t& k) override {
        if (depth_ != 1) return true;
        key_ = k == "model" ? Key::model : k == "stream" ? Key::stream : Key::other;
        if (key_ == Key::model) model_from = *read_;
        return true;
    }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

    bool top_is_object = false;
    bool model_is_string = false, stream_ok = true, stream = false;
    std::string model;
    const char* model_from = nullptr;
    const char* model_to = nullptr;

private:
    enum class Key { other, model, stream };
    enum class kind { other, boolean, string };

    // Every value at depth 1 closes its key: a duplicate key counts as the last one, as in a tree.
    bool value(kind k) {
        if (depth_ == 1) {
            if (key_ == Key::model) model_is_string = k == kind::string;
            if (key_ == Key::stream) stream_ok = k == kind::boolean;
            key_ = Key::other;
        }
        return true;
    }

    const char* const* read_;
    int depth_ = 0;
    Key key_ = Key::other;
};

}  // namespace

std::optional<RequestBody> RequestBody::parse(std::string text, std::string& problem) {
    const char* read = text.data();
    BodyScan scan(&read);
    bool ok = json::sax_parse(CountingIterator(text.data(), &read),
                              CountingIterator(text.data() + text.size(), &read), &scan);
    problem = !ok                                            ? "request body is not valid JSON"
              : !scan.top_is_object                          ? "request body must be a JSON object"
              : !scan.model_is_string                        ? "\"model\" (a string) is required"
              : !scan.stream_ok                              ? "\"stream\" must be a boolean"
                                                             : "";
    if (!problem.empty()) return std::nullopt;
    RequestBody b;
    b.model_from_ = static_cast<std::size_t>(scan.model_from - text.data());
    b.model_to_ = static_cast<std::size_t>(scan.model_to - text.data());
    b.model_ = std::move(scan.model);
    b.stream_ = scan.stream;
    b.text_ = std::move(text);
    return b;
}

std::string RequestBody::with_model(std::string_view upstream_model) const {
    std::string quoted = json(upstream_model).dump();
    std::string out;
    out.reserve(text_.size() + quoted.size());
    out.append(text_, 0, model_from_).append(":").append(quoted).append(text_, model_to_);
    return out;
}

}  // namespace agente::gateway
