// Creates (or updates) one MongoDB user per service, each allowed to read and write only its
// own database (<namespace>_<service>, as vcs_shared.store.database_name names it): the
// services never see each other's data, nor use the administrator.
// Run by docker-compose's mongo-provision with mongosh against the replica set. Passwords
// come from the environment: VCS_MONGO_INTAKE_PASSWORD, VCS_MONGO_ALLOCATOR_PASSWORD,
// VCS_MONGO_NOTIFIER_PASSWORD, VCS_MONGO_DESK_PASSWORD; VCS_NAMESPACE (default vcs).
const SERVICES = ["intake", "allocator", "notifier", "desk"];
const namespace = (process.env.VCS_NAMESPACE || "vcs").replace(/-/g, "_");
const admin = db.getSiblingDB("admin");
admin.auth(process.env.MONGO_INITDB_ROOT_USERNAME, process.env.MONGO_INITDB_ROOT_PASSWORD);
for (const service of SERVICES) {
  const variable = `VCS_MONGO_${service.toUpperCase()}_PASSWORD`;
  const password = process.env[variable];
  if (!password || password.toLowerCase().includes("change-me")) {
    print(`${variable} is not set, or still the example value`);
    quit(2);
  }
  const roles = [{ role: "readWrite", db: `${namespace}_${service}` }];
  if (admin.getUser(service) === null) {
    admin.createUser({ user: service, pwd: password, roles: roles });
  } else {
    admin.updateUser(service, { pwd: password, roles: roles });
  }
  print(`user ${service}: readWrite on ${namespace}_${service}`);
}
