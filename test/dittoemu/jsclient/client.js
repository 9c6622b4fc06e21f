// Ditto's official JavaScript client (Node) against the dittoemu emulator:
// a second, independent speaker of Ditto's WebSocket protocol. Run by
// TestDittoJavaScriptClient (../jsclient_test.go) as: node client.js <host:port>
// It prints one line per step and exits non-zero on the first failure.
'use strict';
const { DittoNodeClient, Thing } = require('@eclipse-ditto/ditto-javascript-client-node');

const domain = process.argv[2];
const thingId = 'org.js:t1';

// pre-authentication as a query parameter of the upgrade (Ditto accepts the header or the parameter)
const preAuth = (subject) => ({
  authenticateWithUrl: (url) => url.withParams([...url.queryParams, 'x-ditto-pre-authenticated=' + encodeURIComponent(subject)]),
  authenticateWithHeaders: (headers) => headers,
});

const twin = (subject) => DittoNodeClient.newWebSocketClient()
  .withoutTls()
  .withDomain(domain)
  .withAuthProvider(preAuth(subject))
  .withBuffer(100) // requests wait for the connection (the bufferless client fails them until it is open)
  .twinChannel()
  .build();

const live = (subject) => DittoNodeClient.newWebSocketClient()
  .withoutTls()
  .withDomain(domain)
  .withAuthProvider(preAuth(subject))
  .withBuffer(100) // requests wait for the connection (the bufferless client fails them until it is open)
  .liveChannel()
  .build();

function check(cond, what, got) {
  if (!cond) {
    throw new Error(what + ': got ' + JSON.stringify(got));
  }
  console.log('ok ' + what);
}

function within(ms, promise, what) {
  return Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error('timeout: ' + what)), ms))]);
}

async function main() {
  const a = twin('pre:js-a');
  const b = twin('pre:js-b');
  const things = a.getThingsHandle();

  const created = await within(5000, things.putThing(Thing.fromObject({ thingId, attributes: { counter: 1 } })), 'putThing');
  check(created.status === 201, 'putThing created (201)', created.status);

  const events = b.getEventsHandle();
  await within(5000, events.requestEvents(), 'START-SEND-EVENTS:ACK');
  console.log('ok START-SEND-EVENTS acknowledged');
  const received = new Promise((resolve) => events.subscribeToThing(thingId, resolve));

  const put = await within(5000, things.putAttribute(thingId, 'counter', 2), 'putAttribute');
  check(put.status === 204, 'putAttribute modified (204)', put.status);
  const ev = await within(5000, received, 'event');
  check(ev.topic === 'org.js/t1/things/twin/events/modified' && ev.path === '/attributes/counter' && ev.value === 2,
    'event delivered to the other session', ev);

  const counter = await within(5000, things.getAttribute(thingId, 'counter'), 'getAttribute');
  check(counter === 2, 'getAttribute', counter);

  let failure;
  try {
    await within(5000, things.deleteAttribute(thingId, 'missing'), 'deleteAttribute');
  } catch (e) {
    failure = e;
  }
  check(failure && failure.status === 404 && failure.error === 'things:attribute.notfound',
    'deleteAttribute of a missing attribute: things:attribute.notfound', failure && (failure.error || String(failure)));

  // live messages: what a sends reaches b (the JavaScript client has no API to answer one)
  const lb = live('pre:js-b');
  const la = live('pre:js-a');
  const mb = lb.getMessagesHandle();
  await within(5000, mb.requestMessages(), 'START-SEND-MESSAGES:ACK');
  console.log('ok START-SEND-MESSAGES acknowledged');
  const got = new Promise((resolve) => mb.subscribeToThing(thingId, resolve));
  await within(5000, la.getMessagesHandle().messageToThingWithoutResponse(thingId, 'ping', JSON.stringify({ n: 1 }), 'application/json'), 'message');
  const m = await within(5000, got, 'message delivery');
  check(m.topic === 'org.js/t1/things/live/messages/ping' && m.path === '/inbox/messages/ping', 'live message delivered to the other session', m);

  a.close();
  b.close();
  la.close();
  lb.close();
  console.log('OK');
}

main().then(() => process.exit(0), (e) => {
  console.error('FAIL ' + (e && e.stack || JSON.stringify(e)));
  process.exit(1);
});
