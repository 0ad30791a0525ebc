// An integration of DOPA VCS in one file: prints every room assignment, one line each.
//
// It connects with its own read-only broker user, declares a queue of its own, binds it to the
// events exchange and reads the CloudEvents the services publish (docs/asyncapi.yaml). Settings,
// from the environment:
//   AMQP_URL   amqp://<user>:<password>@<host>:5672/<vhost>   (required; never printed)
//   EXCHANGE   the events exchange                            (default vcs.events)
//   BINDING    binding key                                    (default room.assigned.#)
//   QUEUE      integration.<name>: a durable queue that keeps what arrives while this program
//              is down; empty (default): a server-named queue that lives as long as it runs
import amqp from 'amqplib';

const ASSIGNED = 'th.go.dopa.vcs.room.assigned.v1';
const url = process.env.AMQP_URL;
const exchange = process.env.EXCHANGE || 'vcs.events';
const binding = process.env.BINDING || 'room.assigned.#';
const queueName = process.env.QUEUE || '';

// The services publish at least once: a rare duplicate has the same message_id.
const seen = new Set();
const SEEN_LIMIT = 10000;

function firstTime(messageId) {
  if (!messageId) return true;
  if (seen.has(messageId)) return false;
  seen.add(messageId);
  if (seen.size > SEEN_LIMIT) seen.delete(seen.values().next().value);
  return true;
}

// Only what the contract makes public. `join_url` carries no passcode, and `sealed_credentials`
// is readable by the services only: it is not printed.
function describe(event) {
  const { data } = event;
  return [
    'room.assigned',
    `request=${event.subject}`,
    `office=${data.district_code}`,
    `meeting_id=${data.meeting_id}`,
    `capacity=${data.capacity}`,
    `pool=${data.pool}`,
    `starts_at=${data.starts_at}`,
    `ends_at=${data.ends_at}`,
  ].join(' ');
}

function handle(channel, message) {
  try {
    const event = JSON.parse(message.content.toString('utf8'));
    if (event.type !== ASSIGNED) {
      // e.g. a room.assigned.v2 published beside v1: this program reads v1 only
      console.error(`skipped ${event.type} (${message.fields.routingKey})`);
    } else if (firstTime(message.properties.messageId)) {
      console.log(describe(event));
    }
  } catch (error) {
    console.error(`skipped a message that is not a CloudEvent: ${error.message}`);
  }
  channel.ack(message);
}

async function main() {
  if (!url) {
    console.error('set AMQP_URL=amqp://<user>:<password>@<host>:5672/<vhost>');
    return 2;
  }
  const connection = await amqp.connect(url, {
    clientProperties: { connection_name: 'dopa-vcs-node-subscriber' },
  });
  // Errors are also reported by the call that meets them; without a listener they would crash.
  connection.on('error', (error) => console.error(`broker: ${error.message}`));
  const channel = await connection.createChannel();
  await channel.prefetch(32);
  await channel.checkExchange(exchange); // the deployment declares it; an integration never does
  const { queue } = queueName
    ? await channel.assertQueue(queueName, { durable: true, arguments: { 'x-queue-type': 'quorum' } })
    : await channel.assertQueue('', { exclusive: true });
  await channel.bindQueue(queue, exchange, binding);
  await channel.consume(queue, (message) => {
    if (message === null) {
      console.error('the broker cancelled the subscription (queue deleted?)');
      process.exit(1);
    }
    handle(channel, message);
  });

  let stopping = false;
  connection.on('close', () => {
    if (!stopping) {
      console.error('lost the broker; restart me (a QUEUE keeps what arrives meanwhile)');
      process.exit(1);
    }
  });
  const stop = async () => {
    stopping = true;
    await connection.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  console.error(`listening: ${exchange} ${binding} -> ${queue}`);
  return undefined;
}

main().then(
  (code) => code !== undefined && process.exit(code),
  (error) => {
    console.error(`cannot subscribe: ${error.message}`);
    process.exit(1);
  },
);
