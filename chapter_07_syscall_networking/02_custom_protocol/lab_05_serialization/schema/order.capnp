# The Order record in Cap'n Proto. generated/order_capnp.rs is compiled from this file:
#   capnp compile -orust:generated --src-prefix=schema schema/order.capnp
# (capnp from the capnproto package, capnpc-rust from `cargo install capnpc --version 0.27.0`).
@0xd3c1a8f2b4e59a71;

struct LineItem {
  sku @0 :Text;
  quantity @1 :UInt32;
  priceCents @2 :UInt64;
}

struct Order {
  id @0 :UInt64;
  customer @1 :Text;
  createdAtMs @2 :UInt64;
  items @3 :List(LineItem);
  tags @4 :List(Text);
  note @5 :Text;
}
