// docker-compose's health check of the first MongoDB member: signs in as the administrator,
// initiates the replica set the first time (its members from VCS_MONGO_MEMBERS, comma-separated
// host:port; this member first, preferred as primary), then reports healthy only once this
// member is a writable primary. Fails (unhealthy, tried again) while mongod is still creating
// the administrator at its first start.
const admin = db.getSiblingDB("admin");
admin.auth(process.env.MONGO_INITDB_ROOT_USERNAME, process.env.MONGO_INITDB_ROOT_PASSWORD);
try {
  rs.status();
} catch (e) {
  const hosts = (process.env.VCS_MONGO_MEMBERS || "mongo:27017").split(",");
  rs.initiate({
    _id: "rs0",
    members: hosts.map((host, i) => ({ _id: i, host: host.trim(), priority: i === 0 ? 2 : 1 })),
  });
}
if (!db.hello().isWritablePrimary) {
  quit(1);
}
