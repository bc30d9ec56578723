// Cairn's Swagger UI configuration: the document comes from this server and
// "Try it out" sends requests to it with the browser's cookies, so signing in
// through the Auth operations lets the protected reads work.
window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/api-docs.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    displayOperationId: true,
    displayRequestDuration: true,
    tryItOutEnabled: false,
    persistAuthorization: true,
    withCredentials: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "BaseLayout",
  });
};
