"""A fake SolusVM 1 master: the admin API at /api/admin/command.php.

Like the real master it replies to every call with HTTP 200 and a run of XML elements
without a root element. A wrong `id` or `key` gets the error reply, and so do unknown
actions, missing parameters and unknown servers. Servers live in memory.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from tests.fakes.server import FakeProvider, Request, Response

COMMAND_PATH = "/api/admin/command.php"
API_ID = "solusid0123456789abcdef"
API_KEY = "soluskey0123456789abcdef0123456789"

PLANS = {"kvm": ["Lobster 1G", "Lobster 2G"], "openvz": ["Lobster CT"]}
TEMPLATES = {"kvm": ["ubuntu-22.04-x86_64", "debian-12-x86_64"], "openvz": ["ubuntu-22.04-x86_64-ct"]}
VIRTUALIZATION_TYPES = ("openvz", "xen", "xen hvm", "kvm")
GIB = 1 << 30


@dataclass
class FakeServer:
    vserver_id: str
    hostname: str
    plan: str
    template: str
    client: str
    virt_type: str
    state: str = "offline"
    main_ip: str = ""
    internal_ip: str = ""
    bandwidth_used: int = 0
    bandwidth_total: int = 1000 * GIB
    tun: bool = False
    history: list[str] = field(default_factory=list)


def fragment(**elements: str) -> str:
    """Render elements as SolusVM does: sibling elements, no root, no declaration."""
    return "".join(f"<{name}>{escape(str(value))}</{name}>" for name, value in elements.items())


def error(message: str) -> Response:
    return Response.text(fragment(status="error", statusmsg=message), content_type="text/html")


def success(**elements: str) -> Response:
    return Response.text(fragment(status="success", statusmsg="", **elements), content_type="text/html")


class FakeSolusVm(FakeProvider):
    def __init__(self, clients: tuple[str, ...] = ("lobstertest",)) -> None:
        super().__init__()
        self.servers: dict[str, FakeServer] = {}
        self.clients = set(clients)
        self._ids = itertools.count(101)
        self._ip_suffix = itertools.count(10)
        self._state_lock = threading.Lock()
        # A reply to send verbatim for the next call, to exercise odd fragments.
        self.raw_replies: list[str] = []
        self.route("POST", COMMAND_PATH, self._command)

    # Test helpers.

    def make_active(self, vserver_id: str) -> None:
        self.servers[vserver_id].state = "online"

    def set_traffic(self, vserver_id: str, used_bytes: int) -> None:
        self.servers[vserver_id].bandwidth_used = used_bytes

    # Dispatch.

    def _command(self, request: Request) -> Response:
        form = request.form()
        if form.get("id") != API_ID or form.get("key") != API_KEY:
            return error("Invalid id or key")
        if self.raw_replies:
            return Response.text(self.raw_replies.pop(0), content_type="text/html")

        action = form.get("action", "")
        handler = {
            "vserver-create": self._create,
            "vserver-infoall": self._infoall,
            "vserver-boot": lambda f: self._power(f, "online"),
            "vserver-shutdown": lambda f: self._power(f, "offline"),
            "vserver-reboot": lambda f: self._power(f, "online"),
            "vserver-terminate": self._terminate,
            "vserver-rebuild": self._rebuild,
            "vserver-change": self._change_plan,
            "vserver-hostname": self._hostname,
            "vserver-tun-enable": lambda f: self._tun(f, True),
            "vserver-tun-disable": lambda f: self._tun(f, False),
            "listplans": self._list_plans,
            "listtemplates": self._list_templates,
        }.get(action)
        if handler is None:
            return error("Invalid action")
        with self._state_lock:
            return handler(form)

    def _find_server(self, form: dict[str, str]) -> FakeServer | None:
        return self.servers.get(form.get("vserverid", ""))

    # Actions.

    def _create(self, form: dict[str, str]) -> Response:
        for name in ("type", "hostname", "username", "password", "plan", "template"):
            if not form.get(name):
                return error(f"Invalid {name}")
        virt_type = form["type"]
        if virt_type not in VIRTUALIZATION_TYPES:
            return error("Invalid virtualization type")
        if form["username"] not in self.clients:
            return error("Client not found")
        if form["plan"] not in PLANS.get(virt_type, []):
            return error("Invalid plan")
        if form["template"] not in TEMPLATES.get(virt_type, []):
            return error("Invalid template")
        if len(form["hostname"]) < 4:
            return error("Invalid hostname")

        vserver_id = str(next(self._ids))
        suffix = next(self._ip_suffix)
        server = FakeServer(
            vserver_id=vserver_id,
            hostname=form["hostname"],
            plan=form["plan"],
            template=form["template"],
            client=form["username"],
            virt_type=virt_type,
            main_ip=f"203.0.113.{suffix}",
            internal_ip=f"10.0.0.{suffix}",
        )
        self.servers[vserver_id] = server
        return success(
            vserverid=vserver_id,
            mainipaddress=server.main_ip,
            extraipaddress="",
            rootpassword=form["password"],
            hostname=server.hostname,
            virtid=f"kvm{vserver_id}",
            nodeid="1",
        )

    def _infoall(self, form: dict[str, str]) -> Response:
        server = self._find_server(form)
        if server is None:
            return error("Virtual server not found")
        free = max(0, server.bandwidth_total - server.bandwidth_used)
        percent = server.bandwidth_used * 100 // server.bandwidth_total
        return success(
            state=server.state,
            mainipaddress=server.main_ip,
            ipaddresses=f"{server.main_ip}, 2001:db8::{server.vserver_id}",
            internalips=server.internal_ip,
            node="node1.example.net",
            location="Testville",
            type=server.virt_type,
            hostname=server.hostname,
            rescuemode="0",
            bandwidth=f"{server.bandwidth_total},{server.bandwidth_used},{free},{percent}",
            hdd=f"{25 * GIB},0,{25 * GIB},0",
            memory=f"{1 << 30},0,{1 << 30},0",
        )

    def _power(self, form: dict[str, str], state: str) -> Response:
        server = self._find_server(form)
        if server is None:
            return error("Virtual server not found")
        server.state = state
        return success()

    def _terminate(self, form: dict[str, str]) -> Response:
        if self.servers.pop(form.get("vserverid", ""), None) is None:
            return error("Virtual server not found")
        return success()

    def _rebuild(self, form: dict[str, str]) -> Response:
        server = self._find_server(form)
        if server is None:
            return error("Virtual server not found")
        if form.get("template") not in TEMPLATES.get(server.virt_type, []):
            return error("Invalid template")
        server.template = form["template"]
        server.state = "offline"
        return success()

    def _change_plan(self, form: dict[str, str]) -> Response:
        server = self._find_server(form)
        if server is None:
            return error("Virtual server not found")
        if form.get("plan") not in PLANS.get(server.virt_type, []):
            return error("Invalid plan")
        server.plan = form["plan"]
        return success()

    def _hostname(self, form: dict[str, str]) -> Response:
        server = self._find_server(form)
        if server is None:
            return error("Virtual server not found")
        if len(form.get("hostname", "")) < 4:
            return error("Invalid hostname")
        server.hostname = form["hostname"]
        return success()

    def _tun(self, form: dict[str, str], enabled: bool) -> Response:
        server = self._find_server(form)
        if server is None:
            return error("Virtual server not found")
        if server.virt_type != "openvz":
            return error("Not an OpenVZ server")
        server.tun = enabled
        return success()

    def _list_plans(self, form: dict[str, str]) -> Response:
        if form.get("type") not in VIRTUALIZATION_TYPES:
            return error("Invalid type")
        return success(plans=",".join(PLANS.get(form["type"], [])))

    def _list_templates(self, form: dict[str, str]) -> Response:
        virt_type = form.get("type")
        if virt_type not in VIRTUALIZATION_TYPES:
            return error("Invalid type")
        names = ",".join(TEMPLATES.get(virt_type, []))
        if virt_type == "kvm":
            return success(templateskvm=names)
        return success(templates=names)
