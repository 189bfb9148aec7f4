// Starts AWS's DynamoDB Local bound to 127.0.0.1 only.
// DynamoDB Local has no bind-address option and listens on every interface, so this
// launcher builds the server from the usual command-line arguments and sets the host of
// its Jetty connectors to the loopback address before starting it.
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class LoopbackDynamoDBLocal {
    private static final String LOOPBACK = "127.0.0.1";

    public static void main(String[] args) throws Exception {
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        int connectors = 0;
        for (Field field : DynamoDBProxyServer.class.getDeclaredFields()) {
            if (!org.eclipse.jetty.server.Server.class.isAssignableFrom(field.getType())) {
                continue;
            }
            field.setAccessible(true);
            org.eclipse.jetty.server.Server jetty = (org.eclipse.jetty.server.Server) field.get(proxy);
            for (org.eclipse.jetty.server.Connector connector : jetty.getConnectors()) {
                Method setHost = connector.getClass().getMethod("setHost", String.class);
                setHost.invoke(connector, LOOPBACK);
                connectors++;
            }
        }
        if (connectors == 0) {
            throw new IllegalStateException("no Jetty connector found to bind to " + LOOPBACK);
        }
        proxy.start();
        proxy.join();
    }
}
