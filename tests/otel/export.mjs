// export.mjs: an LLM application's traces through OpenTelemetry's own SDK and
// its OTLP/HTTP protobuf exporter to trackd (tests/http/otel_sdk.py runs it).
//   node export.mjs http://127.0.0.1:PORT/v1/traces EXPERIMENT
import { context, trace, SpanStatusCode } from "@opentelemetry/api";
import { BasicTracerProvider, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { Resource } from "@opentelemetry/resources";

const [url, service] = process.argv.slice(2);
const exporter = new OTLPTraceExporter({ url });
const provider = new BasicTracerProvider({ resource: new Resource({ "service.name": service }) });
provider.addSpanProcessor(new SimpleSpanProcessor(exporter));
const tracer = provider.getTracer("track-otel-test", "1.0.0");
const ids = [];

for (let q = 0; q < 3; q++) {
  const root = tracer.startSpan("answer-question", { attributes: { "question.index": q } });
  const ctx = trace.setSpan(context.active(), root);
  const retrieve = tracer.startSpan("retrieve", {}, ctx);
  retrieve.setAttribute("openinference.span.kind", "RETRIEVER");
  retrieve.end();
  const llm = tracer.startSpan("chat gpt-4o-mini", { kind: 2 }, ctx);
  llm.setAttributes({
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 100 + q,
    "gen_ai.usage.output_tokens": 20,
  });
  if (q === 2) llm.setStatus({ code: SpanStatusCode.ERROR, message: "rate limited" });
  llm.end();
  root.end();
  ids.push(root.spanContext().traceId);
}
await provider.forceFlush();
await provider.shutdown();
console.log(JSON.stringify(ids));
