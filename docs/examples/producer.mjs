// A motionledger producer in JavaScript, from docs/producers.md alone (npm install, then
// NATS_URL=nats://127.0.0.1:4222 node producer.mjs [sessionId]).
import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";

const nc = await connect({ servers: (process.env.NATS_URL ?? "nats://127.0.0.1:4222").split(",") });
const js = jetstream(nc);
const root = process.env.SUBJECT_ROOT ?? "production";

function uuidv7() { // 48 bits of epoch ms, then random: time-ordered, as the contract asks
  const b = crypto.getRandomValues(new Uint8Array(16));
  for (let i = 0, ms = Date.now(); i < 6; i++) b[i] = Math.floor(ms / 2 ** (8 * (5 - i))) & 0xff;
  b[6] = (b[6] & 0x0f) | 0x70; b[8] = (b[8] & 0x3f) | 0x80;
  const h = Buffer.from(b).toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

async function publish(event) { // subject <root>.<lane>.<sessionId>; retries keep the eventId
  const subject = `${root}.${event.type.split(".")[0]}.${event.sessionId}`;
  for (let attempt = 1; ; attempt++) {
    try {
      const ack = await js.publish(subject, JSON.stringify(event), { msgID: event.eventId });
      if (ack.duplicate && attempt === 1) console.warn(`eventId ${event.eventId} was already in the stream`);
      return ack;
    } catch (err) { if (attempt === 5) throw err; await new Promise((r) => setTimeout(r, 250 * attempt)); }
  }
}

const sessionId = process.argv[2] ?? `js-${Date.now()}`;
// fenced: the session is acknowledged before any other event of it is sent
await publish({ type: "session.started", eventId: uuidv7(), sessionId, sessionType: "music_demo" });
const t = Date.now(); // director events and music moments may be in flight together
const acks = await Promise.all([
  publish({ type: "director.event", eventId: uuidv7(), sessionId, timestampMs: t, eventType: "bar_fire" }),
  publish({ type: "director.event", eventId: uuidv7(), sessionId, timestampMs: t + 40, eventType: "cut", cameraId: "cam-1" }),
  publish({ type: "music.moment", eventId: uuidv7(), sessionId, timestampMs: t, section: "intro", tempo: 120 }),
]);
console.log(JSON.stringify({ sessionId, seqs: acks.map((a) => a.seq) }));
await nc.drain();
