import ArgumentParser
import MQTTPacket

@main
struct Mshmon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mshmon",
        abstract: "A terminal dashboard for hunting leaks in MQTT clients.")
    func run() throws {
        print(Mshmon.helpMessage())
    }
}
