// Scale-out backend profile: a Durable Task Scheduler and its task hub, with the
// Durable Task Data Contributor role for the app's identity (deployed only when
// main.bicep's durableBackend is 'DurableTaskScheduler').
// Shapes follow Azure-Samples/Durable-Task-Scheduler (samples/durable-functions/python/
// pdf-summarizer/infra/app/dts.bicep and dts-Access.bicep).
param schedulerName string
param taskHubName string
param location string
param tags object = {}

@allowed([
  'Consumption'
  'Dedicated'
])
param skuName string = 'Consumption'

@description('Capacity units of the Dedicated SKU (1 to 3); ignored by Consumption.')
param skuCapacity int = 1

param appPrincipalId string

@description('Object id of the deploying user (dashboard access); empty for none.')
param userPrincipalId string = ''

@description('Client IP ranges allowed to reach the scheduler. An empty list denies everything; access is still authorized per identity (Entra ID + RBAC), as for the storage accounts.')
param ipAllowlist array = [
  '0.0.0.0/0'
]

// Durable Task Data Contributor: start, run and manage orchestrations, activities and
// entities in the task hub (the role the Durable Functions docs name for apps).
var durableTaskDataContributor = '0ad04412-c4d5-4796-b79c-f76d14c8d402'

var consumptionSku = {
  name: 'Consumption'
}
var dedicatedSku = {
  name: 'Dedicated'
  capacity: skuCapacity
}

resource scheduler 'Microsoft.DurableTask/schedulers@2025-11-01' = {
  name: schedulerName
  location: location
  tags: tags
  properties: {
    ipAllowlist: ipAllowlist
    sku: skuName == 'Dedicated' ? dedicatedSku : consumptionSku
  }
}

resource taskHub 'Microsoft.DurableTask/schedulers/taskHubs@2025-11-01' = {
  parent: scheduler
  name: taskHubName
}

// Scoped to the task hub, not the whole scheduler: the app needs no other hub.
resource appTaskHubAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(taskHub.id, appPrincipalId, durableTaskDataContributor)
  scope: taskHub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', durableTaskDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Durable Task Data Contributor: the function app runs the task hub'
  }
}

resource userTaskHubAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(taskHub.id, userPrincipalId, durableTaskDataContributor)
  scope: taskHub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', durableTaskDataContributor)
    principalId: userPrincipalId
    principalType: 'User'
    description: 'Durable Task Data Contributor: deploying user, for the scheduler dashboard'
  }
}

output endpoint string = scheduler.properties.endpoint
output taskHubName string = taskHub.name
