#include "template/hf_chat.h"

#include "template/jinja/template.h"

namespace corral::tmpl {

using jinja::Value;

std::string render_hf_chat(const std::string& template_text, const ChatInput& input,
                           const HfChatOptions& options) {
  return render_hf_chat(jinja::Template::parse(template_text), input, options);
}

std::string render_hf_chat(const jinja::Template& chat_template, const ChatInput& input,
                           const HfChatOptions& options) {
  Value context = Value::dict();
  if (input.context.is_object())
    for (const auto& [key, value] : input.context.items())
      context.set(Value(key), Value::from_json(value));
  context.set(Value("messages"), Value::from_json(input.messages));
  context.set(Value("tools"), Value::from_json(input.tools));
  context.set(Value("documents"), Value::from_json(input.documents));
  context.set(Value("add_generation_prompt"), Value(input.add_generation_prompt));
  // Ollama's think reaches HF templates as the kwarg they read (Qwen3: enable_thinking), unless
  // the caller passed that variable itself.
  if (input.think && !context.find(Value("enable_thinking")))
    context.set(Value("enable_thinking"), Value(*input.think));
  context.set(Value("raise_exception"),
              Value::function("raise_exception", [](jinja::CallArgs& args) -> Value {
                const Value* message = args.get("message", 0);
                throw jinja::Error("TemplateError", message ? message->str() : "");
              }));
  std::optional<std::time_t> now = options.now;
  context.set(Value("strftime_now"), Value::function("strftime_now", [now](jinja::CallArgs& args) {
                const Value* format = args.get("format", 0);
                if (!format || !format->is_string())
                  throw jinja::Error("TypeError", "strftime_now() requires a format string");
                std::time_t t = now ? *now : std::time(nullptr);
                std::tm local{};
                localtime_r(&t, &local);
                char buf[512];
                size_t n = std::strftime(buf, sizeof(buf), format->as_string().c_str(), &local);
                return Value(std::string(buf, n));
              }));
  return chat_template.render(context, options.limits);
}

}  // namespace corral::tmpl
