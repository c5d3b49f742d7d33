// A Request with fields the test sets, for units that take a request (routes, the access log).
#pragma once

#include <agente/handler.hpp>

#include <map>
#include <string>

namespace agente {

class FakeRequest final : public Request {
public:
    std::string method_ = "GET", target_ = "/a/b?x=1", body_, remote_ = "10.0.0.1";
    std::map<std::string, std::string> headers_;
    std::string_view method() const override { return method_; }
    std::string_view target() const override { return target_; }
    std::string_view header(std::string_view n) const override {
        auto it = headers_.find(std::string(n));
        return it == headers_.end() ? std::string_view() : std::string_view(it->second);
    }
    std::string_view body() const override { return body_; }
    std::string_view remote_addr() const override { return remote_; }
    std::string_view scheme() const override { return "http"; }
    std::string_view path_param() const override { return ""; }
};

}  // namespace agente
