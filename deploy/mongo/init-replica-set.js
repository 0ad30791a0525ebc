// docker-compose's health check of mongo: initiates the one-member replica set the first time,
// then reports healthy only once this member is a writable primary.
try {
  rs.status();
} catch (e) {
  rs.initiate({ _id: "rs0", members: [{ _id: 0, host: "mongo:27017" }] });
}
if (!db.hello().isWritablePrimary) {
  quit(1);
}
