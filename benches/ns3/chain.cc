// ns-3 counterpart of podpath's `forwarding` bench (sim-models/benches/forwarding.rs):
// four nodes in a chain joined by three point-to-point links (10 Gbit/s,
// 1 us), global (static) routing, one UdpClient on node 0 sending N UDP
// datagrams of 1000 IP bytes (972 bytes of UDP payload, the first 12 of them
// UdpClient's sequence/timestamp header) every 1 us to a UdpServer on node 3.
//
// Prints the wall-clock time of Simulator::Run() (setup excluded, as in the
// podpath bench) and packets per wall-clock second.
//
// Build and run (benches/compare-forwarding.sh does both):
//   g++ -O2 -std=c++17 chain.cc -lns3-core -lns3-network -lns3-internet \
//       -lns3-point-to-point -lns3-applications -o /tmp/ns3-chain
//   /tmp/ns3-chain [--packets=1000000] [--size=972] [--interval=1us]
// (Debian's ns3-*.pc files emit a broken `-I/usr\;` flag, so the build line
// names the libraries directly; the headers are in /usr/include/ns3.)

#include "ns3/applications-module.h"
#include "ns3/core-module.h"
#include "ns3/internet-module.h"
#include "ns3/network-module.h"
#include "ns3/point-to-point-module.h"

#include <chrono>
#include <cstdio>

using namespace ns3;

int
main(int argc, char* argv[])
{
    uint32_t packets = 1000000;
    uint32_t size = 972; // UDP payload: 972 + 8 (UDP) + 20 (IPv4) = 1000 bytes
    std::string interval = "1us";
    CommandLine cmd(__FILE__);
    cmd.AddValue("packets", "datagrams to send", packets);
    cmd.AddValue("size", "UDP payload bytes per datagram", size);
    cmd.AddValue("interval", "time between datagrams", interval);
    cmd.Parse(argc, argv);

    NodeContainer nodes;
    nodes.Create(4);

    PointToPointHelper p2p;
    p2p.SetDeviceAttribute("DataRate", StringValue("10Gbps"));
    p2p.SetChannelAttribute("Delay", StringValue("1us"));

    InternetStackHelper stack;
    stack.Install(nodes);

    Ipv4AddressHelper addr;
    Ipv4InterfaceContainer last;
    for (uint32_t i = 0; i < 3; i++)
    {
        NetDeviceContainer d = p2p.Install(nodes.Get(i), nodes.Get(i + 1));
        std::string net = "10.0." + std::to_string(i + 1) + ".0";
        addr.SetBase(net.c_str(), "255.255.255.0");
        last = addr.Assign(d);
    }
    Ipv4GlobalRoutingHelper::PopulateRoutingTables();

    const uint16_t port = 9;
    UdpServerHelper server(port);
    ApplicationContainer sa = server.Install(nodes.Get(3));
    sa.Start(Seconds(0.0));

    UdpClientHelper client(last.GetAddress(1), port);
    client.SetAttribute("MaxPackets", UintegerValue(packets));
    client.SetAttribute("Interval", TimeValue(Time(interval)));
    client.SetAttribute("PacketSize", UintegerValue(size));
    ApplicationContainer ca = client.Install(nodes.Get(0));
    ca.Start(Seconds(0.1));

    // Long enough for every datagram to be sent and to arrive.
    Time send_time = Time(interval) * static_cast<int64_t>(packets);
    Simulator::Stop(Seconds(0.2) + send_time + MilliSeconds(10));

    auto t0 = std::chrono::steady_clock::now();
    Simulator::Run();
    auto t1 = std::chrono::steady_clock::now();
    double secs = std::chrono::duration<double>(t1 - t0).count();

    Ptr<UdpClient> c = DynamicCast<UdpClient>(ca.Get(0));
    Ptr<UdpServer> s = DynamicCast<UdpServer>(sa.Get(0));
    uint64_t sent = c->GetTotalTx() / size;
    uint64_t received = s->GetReceived();
    Simulator::Destroy();

    std::printf("ns-3 chain: %llu sent, %llu received in %.3f s wall clock\n",
                static_cast<unsigned long long>(sent),
                static_cast<unsigned long long>(received),
                secs);
    std::printf("ns-3 chain: %.0f packets/s\n", received / secs);
    if (sent != packets || received != packets)
    {
        std::fprintf(stderr, "ns-3 chain: expected %u sent and received\n", packets);
        return 1;
    }
    return 0;
}
