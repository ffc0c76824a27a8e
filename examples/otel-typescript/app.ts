// A TypeScript app that sends one LLM call to llmpulse as an OpenTelemetry GenAI span, over
// OTLP/HTTP (protobuf) to the Collector, with the bearer token the Collector binds to an app.
// The same code as docs/SEND_OPENTELEMETRY.md; tests/test_otlp_ingest.py builds and runs it.
//
//   npm ci && npm run build
//   LLMPULSE_OTLP_URL=http://localhost:4318/v1/traces LLMPULSE_TOKEN=... npm start
import { NodeSDK } from "@opentelemetry/sdk-node";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { trace } from "@opentelemetry/api";

const sdk = new NodeSDK({
  resource: resourceFromAttributes({ "service.name": process.env.APP_NAME ?? "support-bot",
                                     "deployment.environment.name": "production" }),
  traceExporter: new OTLPTraceExporter({
    url: process.env.LLMPULSE_OTLP_URL ?? "http://localhost:4318/v1/traces",
    headers: { Authorization: `Bearer ${process.env.LLMPULSE_TOKEN}` },
  }),
});
sdk.start();

// With an instrumentation library the span is made for you; by hand:
trace.getTracer("my-app").startActiveSpan("chat gpt-4o-mini", (span) => {
  span.setAttributes({
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.prompt.name": "order-status", "gen_ai.prompt.version": "ts1",
    "gen_ai.input.messages": JSON.stringify([{ role: "user", parts: [{ type: "text", content: "Hi" }] }]),
    "gen_ai.output.messages": JSON.stringify([{ role: "assistant", finish_reason: "stop",
                                                parts: [{ type: "text", content: "Hello!" }] }]),
    "gen_ai.usage.input_tokens": 3, "gen_ai.usage.output_tokens": 2,
  });
  console.log(span.spanContext().traceId);  // the test finds the stored call by it
  span.end();
});

await sdk.shutdown();  // flushes the batch to the Collector
