// Log Analytics + workspace-based Application Insights with local (instrumentation-key)
// authentication disabled: telemetry is only accepted with an Entra ID token, which the
// app's identity gets through Monitoring Metrics Publisher (rbac.bicep) and the
// APPLICATIONINSIGHTS_AUTHENTICATION_STRING setting (function-app.bicep).
param logAnalyticsName string
param applicationInsightsName string
param location string
param tags object = {}

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    retentionInDays: 30
    sku: {
      name: 'PerGB2018'
    }
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true
  }
}

output applicationInsightsName string = applicationInsights.name
